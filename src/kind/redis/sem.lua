-- One semaphore on a Redis server: every operation is one call of this script, so each
-- is one atomic step on the server, timed by the server's clock (TIME), never a client's.
--
-- KEYS[1] is the semaphore's key prefix, "sem:{NAME}:" (the braces keep its keys in one
-- hash slot). ARGV[1] is the operation, ARGV[2] the caller's lease in ms (it also sets
-- how long the server stays quiet after a start, below), then the operation's own.
--
-- The keys, all under the prefix:
--   meta       hash: value, capacity, fence (the last number granted), created (ms)
--   queue      list: the ids of the waiters, oldest first
--   waiters    hash: id -> "n lease ttl host pid" of each waiter, queued or granted
--   deadlines  zset: id -> when a waiter that hasn't shown itself is taken for dead
--   granted    hash: id -> fence, for waiters granted a count they haven't claimed
--   holders    hash: id -> "n fence host pid" of each lease holder
--   expiries   zset: id -> when each holder's lease runs out
--   bell:ID    list: pushed when waiter ID is served (its blocking pop wakes up)
--
-- Quiet start: a server that started less than one lease ago may have lost holders (a
-- restart without persistence, or from an older snapshot) whose commands still run until
-- their helpers notice; it grants nothing until a lease after its start, by which time
-- every such helper has stopped its command.

local p = KEYS[1]
local M, Q, W, WE = p .. 'meta', p .. 'queue', p .. 'waiters', p .. 'deadlines'
local R, H, HE = p .. 'granted', p .. 'holders', p .. 'expiries'
local function bell(id) return p .. 'bell:' .. id end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local lease = tonumber(ARGV[2])

local function quiet_until()
  local info = redis.call('INFO', 'server')
  local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
  return now - up * 1000 + lease
end

if op == 'init' then
  if redis.call('EXISTS', M) == 1 then return {'exists'} end
  local v = ARGV[3]
  -- Fences start at the creation time in microseconds, so that a name made again (after
  -- a destroy, or a server that lost it) still hands out higher numbers than before.
  redis.call('HSET', M, 'value', v, 'capacity', v, 'fence', string.format('%.0f', now * 1000),
    'created', now,
    'by', ARGV[4])
  return {'ok'}
end

if redis.call('EXISTS', M) == 0 then return {'missing'} end
local value = tonumber(redis.call('HGET', M, 'value'))

-- "n lease ttl host pid" -> its fields
local function parse(w)
  local n, l, ttl, host, pid = string.match(w, '^(%d+) (%d+) (%d+) (%S+) (%d+)$')
  return tonumber(n), tonumber(l), tonumber(ttl), host, pid
end

-- Forget waiter id, queued or granted; a count granted to it and not claimed comes back.
local function drop(id)
  local w = redis.call('HGET', W, id)
  if redis.call('HEXISTS', R, id) == 1 then
    if w then value = value + parse(w) end
    redis.call('HDEL', R, id)
  else
    redis.call('LREM', Q, 1, id)
  end
  redis.call('HDEL', W, id)
  redis.call('ZREM', WE, id)
  redis.call('DEL', bell(id))
end

-- Give back the counts of holders whose lease ran out, and forget waiters that stopped
-- showing themselves (dead, or cut off).
local function reap()
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', HE, '-inf', now)) do
    local h = redis.call('HGET', H, id)
    if h then value = value + tonumber(string.match(h, '^(%d+)')) end
    redis.call('HDEL', H, id)
    redis.call('ZREM', HE, id)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', WE, '-inf', now)) do
    drop(id)
  end
end

-- The next fence number, as a string of digits (Lua would print a number this large in
-- floating point).
local function fence()
  return string.format('%.0f', redis.call('HINCRBY', M, 'fence', 1))
end

-- Serve the queue from its head while the value allows: first come, first served, and a
-- head that wants more than there is holds back everyone behind it.
local quiet = nil
local function serve()
  while true do
    local id = redis.call('LINDEX', Q, 0)
    if not id then return end
    local n, _, ttl = parse(redis.call('HGET', W, id))
    if value < n then return end
    quiet = quiet or quiet_until()
    if now < quiet then return end
    value = value - n
    redis.call('LPOP', Q)
    local f = fence()
    redis.call('HSET', R, id, f)
    -- A live waiter claims at once (its bell rings); give it a third of its heartbeat
    -- for that, but never extend a deadline a dead waiter has already earned.
    local due = tonumber(redis.call('ZSCORE', WE, id) or 0)
    redis.call('ZADD', WE, math.max(due, now + math.floor(ttl / 3)), id)
    redis.call('RPUSH', bell(id), f)
    redis.call('PEXPIRE', bell(id), ttl)
  end
end

local function save() redis.call('HSET', M, 'value', value) end

-- Make id a holder of n under a lease (when its lease is not 0).
local function hold(id, n, l, f, host, pid)
  if l > 0 then
    redis.call('HSET', H, id, n .. ' ' .. f .. ' ' .. host .. ' ' .. pid)
    redis.call('ZADD', HE, now + l, id)
  end
end

-- A granted waiter takes its count: it becomes a holder (under a lease) or simply has it.
local function claim(id)
  local f = redis.call('HGET', R, id)
  local n, l, _, host, pid = parse(redis.call('HGET', W, id))
  redis.call('HDEL', R, id)
  redis.call('HDEL', W, id)
  redis.call('ZREM', WE, id)
  redis.call('DEL', bell(id))
  hold(id, n, l, f, host, pid)
  return {'granted', tostring(f)}
end

reap()

if op == 'take' or op == 'try' then
  -- ARGV: id n lease ttl host pid
  local id, n, l, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if redis.call('HEXISTS', W, id) == 1 then return {'queued'} end
  -- More than it was made with, and more than there is: only posts beyond the capacity
  -- could ever make it possible, so say so now rather than wait for ever (0 is a gate).
  local cap = tonumber(redis.call('HGET', M, 'capacity'))
  if cap > 0 and n > cap and value < n then
    save()
    return {'capacity', tostring(cap)}
  end
  serve()
  if redis.call('LLEN', Q) == 0 and value >= n and now >= (quiet or quiet_until()) then
    value = value - n
    local f = fence()
    hold(id, n, l, f, ARGV[7], ARGV[8])
    save()
    return {'granted', tostring(f)}
  end
  if op == 'try' then
    save()
    return {'busy'}
  end
  redis.call('RPUSH', Q, id)
  redis.call('HSET', W, id, n .. ' ' .. l .. ' ' .. ttl .. ' ' .. ARGV[7] .. ' ' .. ARGV[8])
  redis.call('ZADD', WE, now + ttl, id)
  save()
  return {'queued'}
elseif op == 'claim' then
  -- ARGV: id; also the waiter's heartbeat while it is queued
  local id = ARGV[3]
  serve()
  save()
  if redis.call('HEXISTS', R, id) == 1 then return claim(id) end
  local w = redis.call('HGET', W, id)
  if not w then return {'gone'} end
  local _, _, ttl = parse(w)
  redis.call('ZADD', WE, now + ttl, id)
  return {'queued'}
elseif op == 'cancel' then
  -- ARGV: id accept; a count granted meanwhile is taken when accept is 1, else given back
  local id = ARGV[3]
  if ARGV[4] == '1' and redis.call('HEXISTS', R, id) == 1 then
    save()
    return claim(id)
  end
  local known = redis.call('HEXISTS', W, id) == 1
  drop(id)
  serve()
  save()
  if known then return {'cancelled'} end
  return {'gone'}
elseif op == 'post' then
  -- ARGV: n max
  local n = tonumber(ARGV[3])
  if value + n > tonumber(ARGV[4]) then
    save()
    return {'range', tostring(value)}
  end
  value = value + n
  serve()
  save()
  return {'ok'}
elseif op == 'refresh' then
  -- ARGV: id
  local id = ARGV[3]
  serve()
  save()
  if redis.call('HEXISTS', H, id) == 0 then return {'lost'} end
  redis.call('ZADD', HE, now + lease, id)
  return {'ok'}
elseif op == 'release' then
  -- ARGV: id
  local id = ARGV[3]
  local h = redis.call('HGET', H, id)
  if not h then
    serve()
    save()
    return {'lost'}
  end
  value = value + tonumber(string.match(h, '^(%d+)'))
  redis.call('HDEL', H, id)
  redis.call('ZREM', HE, id)
  serve()
  save()
  return {'ok'}
elseif op == 'relax' then
  -- Post to every queued waiter exactly what it waits for, and serve them all.
  local ids = redis.call('LRANGE', Q, 0, -1)
  for _, id in ipairs(ids) do
    value = value + parse(redis.call('HGET', W, id))
  end
  serve()
  save()
  return {'ok', tostring(#ids)}
elseif op == 'peek' then
  serve()
  save()
  return {'ok', tostring(value)}
elseif op == 'status' then
  serve()
  save()
  local out = {'ok', tostring(value), redis.call('HGET', M, 'capacity'),
    redis.call('HGET', M, 'fence'), redis.call('HGET', M, 'created'),
    tostring(redis.call('LLEN', Q)), tostring(now), redis.call('HGET', M, 'by') or '',
    tostring(math.max(0, (quiet or quiet_until()) - now))}
  for _, id in ipairs(redis.call('ZRANGE', HE, 0, -1)) do
    local h = redis.call('HGET', H, id)
    local exp = redis.call('ZSCORE', HE, id)
    if h then
      table.insert(out, h .. ' ' .. tostring(tonumber(exp) - now))
    end
  end
  return out
elseif op == 'destroy' then
  -- Wake every waiter, queued or granted, to find the semaphore gone.
  local all = redis.call('HGETALL', W)
  for i = 1, #all, 2 do
    local _, _, ttl = parse(all[i + 1])
    redis.call('RPUSH', bell(all[i]), 'removed')
    redis.call('PEXPIRE', bell(all[i]), ttl)
  end
  redis.call('DEL', M, Q, W, WE, R, H, HE)
  return {'ok'}
end
return redis.error_reply('sem: unknown operation ' .. tostring(op))
