# shellcheck shell=bash
# Simulated machines and Redis servers for the fleet tests (bats/fleet.bats), loaded
# after test_helper.
#
# A machine is a process tree of its own: new IPC, UTS, PID and mount namespaces
# (unshare), its own hostname (the machine's name, which status shows as a holder's host)
# and its own HOME ($D/NAME). Its init is a bash that only reaps; every command run on it
# enters its namespaces (nsenter), so killing that init with SIGKILL kills every process
# of the machine at once, as a machine that loses power.
#
# machine_start NAME          start a machine
# machine_run NAME CMD...     run CMD on it in the background (the job's pid in $!)
# machine_sh NAME SCRIPT ARG...  machine_run bash with sem.sh sourced, running SCRIPT
#                             with ARG... as $1... and NAME as $0; LOG=$D/log, the shared
#                             log, in its environment
# machine_exec NAME CMD...    run CMD on it and wait for it (kill a process by its pid
#                             inside, for example)
# machine_kill NAME           SIGKILL every process of the machine at once; wait until
#                             it is gone
# fleet_server_start DIR [--persist aof]   a Redis server for one test, stopped in
#                             teardown; sets FLEET_PORT
# fleet_proxy_start PORT      a proxy to PORT (tests/redis/proxy.py), stopped in
#                             teardown; sets PROXY_PID and PROXY_PORT
# fleet_name BASE             this test's Redis name for BASE (redis:NAME: the server in
#                             SEM_REDIS_URL)
# The jobs' log and its checks: $D/job ID SECONDS (a command for sem_run that marks its
# start, with SEM_FENCE, and its stop), watch_end/end_of/log_end (when a job ended, even
# by SIGKILL), max_inside/assert_inside_at_most, time_of; waiting: wait_for_line,
# wait_for_file, wait_for_queue, await_job; keys: assert_idle_keys against an
# idle_reference.
# The teardown kills every machine and proxy, fails the test if any key of its names is
# left on the server in SEM_REDIS_URL once they are destroyed, then stops the test's
# own servers.

# shellcheck source=bats/redis.bash
source "$REPO_ROOT/bats/redis.bash"

REDIS_SERVER=$REPO_ROOT/tests/redis/server.sh
REDIS_PROXY=$REPO_ROOT/tests/redis/proxy.py

# fleet_requirements: skip unless machines can be made (root, unshare and nsenter with
# PID namespaces) and redis-server is installed.
fleet_requirements() {
	if [[ $(id -u) != 0 ]] || ! unshare --ipc --uts --pid --fork --mount-proc true 2>/dev/null; then
		skip "fleet tests need root to make namespaces (unshare --ipc --uts --pid)"
	fi
	command -v redis-server >/dev/null || skip "redis-server is not installed (make deps)"
	command -v jq >/dev/null || skip "jq is not installed (make deps)"
}

# fleet_setup_file: the file's server (no persistence), in SEM_REDIS_URL for every test.
fleet_setup_file() {
	[[ $(id -u) == 0 ]] && command -v redis-server >/dev/null || return 0
	local port
	port=$("$REDIS_SERVER" start "$BATS_FILE_TMPDIR/redis") || return 1
	export SEM_REDIS_URL=redis://127.0.0.1:$port
	# A fresh server grants nothing for a lease after its start (quiet start, timed by
	# its uptime in whole seconds); wait that out once here, so that the timings of the
	# tests, whichever runs first, are not stretched by it.
	export SEM_LEASE=2
	local i
	for ((i = 0; i < 100; i++)); do
		(($(redis-cli -p "$port" info server | tr -d '\r' | sed -n 's/^uptime_in_seconds://p') > SEM_LEASE)) && return 0
		sleep 0.1
	done
}

fleet_teardown_file() {
	[[ -d $BATS_FILE_TMPDIR/redis ]] || return 0
	"$REDIS_SERVER" stop "$BATS_FILE_TMPDIR/redis"
}

# The names of this test: unique per bats run and test.
_fleet_prefix() {
	echo "fl-${BATS_ROOT_PID}-${BATS_SUITE_TEST_NUMBER}-"
}

fleet_name() {
	echo "redis:$(_fleet_prefix)$1"
}

# Where the machines' bookkeeping lives (not under $D, which the machines see as $D).
_fleet_dir() {
	echo "$BATS_TEST_TMPDIR/fleet"
}

machine_start() {
	local name=$1 m i kids
	m=$(_fleet_dir)/machines/$name
	[[ ! -e $m ]] || fail "machine $name exists already"
	mkdir -p "$m" "$D/$name"
	# The init: sets the hostname, says it is ready, then reaps whatever is reparented to
	# it (a pid namespace's init must, or killed commands stay zombies).
	# shellcheck disable=SC2016 # expanded by the machine's bash
	unshare --ipc --uts --pid --fork --mount-proc bash -c '
		hostname "$1" || exit 1
		: >"$2/ready"
		while :; do sleep 3600 & wait; done' _ "$name" "$m" \
		</dev/null >/dev/null 2>"$m/init.err" 3>&- &
	echo "$!" >"$m/unshare.pid"
	for ((i = 0; i < 500; i++)); do
		if [[ -e $m/ready ]]; then
			kids=$(cat "/proc/$!/task/$!/children" 2>/dev/null) || kids=''
			if [[ -n $kids ]]; then
				echo "${kids%% *}" >"$m/init.pid"
				return 0
			fi
		fi
		kill -0 "$!" 2>/dev/null || break
		sleep 0.01
	done
	fail "machine $name did not start: $(cat "$m/init.err" 2>/dev/null)"
}

_machine_init() {
	local m
	m=$(_fleet_dir)/machines/$1
	[[ -r $m/init.pid ]] || {
		echo "no machine $1" >&2
		return 1
	}
	cat "$m/init.pid"
}

# machine_run NAME CMD...: CMD runs in the machine's namespaces, with HOME=$D/NAME and in
# that directory; its stdout and stderr go to the caller's (redirect them). The job (an
# nsenter outside the machine that waits for CMD) has its pid in $!; its exit status is
# CMD's, or 128+9 when the machine is killed.
machine_run() {
	local name=$1 init
	shift
	init=$(_machine_init "$name") || return 1
	HOME=$D/$name nsenter --target "$init" --ipc --uts --pid --mount --wd="$D/$name" -- "$@" 3>&- &
}

# machine_sh NAME SCRIPT ARG...: bash on the machine, sem.sh sourced, runs SCRIPT.
machine_sh() {
	local name=$1 script=$2
	shift 2
	LOG=$D/log machine_run "$name" bash -c "source \"\$REPO_ROOT/sh/sem.sh\" || exit 125
$script" "$name" "$@"
}

machine_exec() {
	local name=$1 init
	shift
	init=$(_machine_init "$name") || return 1
	HOME=$D/$name nsenter --target "$init" --ipc --uts --pid --mount --wd="$D/$name" -- "$@"
}

machine_kill() {
	local name=$1 init m i
	m=$(_fleet_dir)/machines/$name
	init=$(_machine_init "$name") || return 1
	kill -9 "$init" 2>/dev/null || true
	# The kernel kills the rest of the namespace with its init; wait for the unshare
	# that started it to see it end.
	for ((i = 0; i < 500; i++)); do
		kill -0 "$(<"$m/unshare.pid")" 2>/dev/null || break
		sleep 0.01
	done
	rm -f "$m/init.pid"
	mv "$m" "$m.killed.$EPOCHSECONDS.$RANDOM"
}

fleet_server_start() {
	local dir=$1 port
	shift
	port=$("$REDIS_SERVER" start "$dir" "$@") || fail "cannot start a redis-server in $dir"
	mkdir -p "$(_fleet_dir)"
	echo "$dir" >>"$(_fleet_dir)/servers"
	# shellcheck disable=SC2034 # read by the tests
	FLEET_PORT=$port
}

fleet_proxy_start() {
	local target=$1 i
	command -v python3 >/dev/null || skip "the partition proxy (tests/redis/proxy.py) needs python3"
	mkdir -p "$(_fleet_dir)"
	: >"$(_fleet_dir)/proxy.port"
	python3 "$REDIS_PROXY" 0 "$target" >"$(_fleet_dir)/proxy.port" 2>"$(_fleet_dir)/proxy.err" 3>&- &
	PROXY_PID=$!
	echo "$PROXY_PID" >>"$(_fleet_dir)/proxies"
	for ((i = 0; i < 500; i++)); do
		PROXY_PORT=$(<"$(_fleet_dir)/proxy.port")
		[[ -n $PROXY_PORT ]] && return 0
		sleep 0.01
	done
	fail "the proxy did not start within 5 s: $(cat "$(_fleet_dir)/proxy.err")"
}

# fleet_teardown: every machine killed, proxies ended (woken first if stopped), the leak
# check on the server in SEM_REDIS_URL (the test may have pointed it at a server of its
# own), then the test's own servers stopped.
fleet_teardown() {
	local rc=0 m pid dir left
	for m in "$(_fleet_dir)"/machines/*; do
		[[ -r $m/init.pid ]] || continue
		machine_kill "${m##*/}"
	done
	if [[ -r $(_fleet_dir)/proxies ]]; then
		while read -r pid; do
			kill -CONT "$pid" 2>/dev/null || true
			kill -TERM "$pid" 2>/dev/null || true
		done <"$(_fleet_dir)/proxies"
	fi
	teardown_base || rc=$?
	if [[ -n ${SEM_REDIS_URL:-} ]]; then
		left=$(redis_clean "$(_fleet_prefix)")
		if [[ -n $left ]]; then
			echo "leaked Redis keys (the helper's destroy left them): ${left//$'\n'/ }" >&2
			rc=1
		fi
	fi
	if [[ -r $(_fleet_dir)/servers ]]; then
		while read -r dir; do
			"$REDIS_SERVER" stop "$dir" || rc=1
		done <"$(_fleet_dir)/servers"
	fi
	return "$rc"
}
eval "teardown_base() $(declare -f teardown | tail -n +2)"
teardown() {
	fleet_teardown
}
eval "setup_base() $(declare -f setup | tail -n +2)"
setup() {
	setup_base
	fleet_requirements
	# Short leases keep the file short; 2 s still leaves the helper's refresh (every
	# lease/3) room on a loaded machine.
	export SEM_LEASE=2
	# job ID SECONDS: a command for sem_run that marks its start (with SEM_FENCE) and its
	# stop in $LOG, and its stop too when it is told to stop (SIGTERM).
	# With a FIFO $D/ID.alive (watch_end ID), it holds it open while it lives, so that
	# even its death by SIGKILL, which leaves no mark, is seen at once.
	cat >"$D/job" <<'JOB'
#!/usr/bin/env bash
ID=$1
mark() { echo "$1 $HOSTNAME $ID ${EPOCHREALTIME/./} ${SEM_FENCE:-}" >>"$LOG"; }
trap 'mark stop; exit 143' TERM
[[ -p ${LOG%/*}/$ID.alive ]] && exec 9>"${LOG%/*}/$ID.alive"
mark start
sleep "$2" 9>&- &
wait $!
mark stop
JOB
	chmod 755 "$D/job"
}

# await_job PID [SECONDS]: wait for the background job PID to end, at most SECONDS
# (default 30), and put its exit status in $status; fail if it is still running then.
await_job() {
	local pid=$1 limit=${2:-30} i state
	for ((i = 0; i < limit * 50; i++)); do
		state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || state=gone
		if [[ $state == gone || $state == Z ]]; then
			reap "$pid"
			return 0
		fi
		sleep 0.02
	done
	fail "job $pid still running after $limit s"
}

# watch_end ID: before job ID starts, a FIFO it will hold open while it lives and a
# watcher that writes to $D/ID.end the microsecond at which it closed (the job ended,
# however: SIGKILL included).
watch_end() {
	mkfifo "$D/$1.alive"
	(
		exec <"$D/$1.alive"
		cat >/dev/null
		echo "${EPOCHREALTIME/./}" >"$D/$1.end"
	) 3>&- &
}

# end_of ID [SECONDS]: the microsecond job ID ended (watch_end), waiting for it.
end_of() {
	wait_for_file "$D/$1.end" "${2:-5}" || fail "job $1 has not ended"
	cat "$D/$1.end"
}

# log_end ID: add job ID's stop mark to $D/log at its end (end_of) if it left none (it
# was killed), so that max_inside sees it leave.
log_end() {
	local end host
	end=$(end_of "$1") || return 1
	if ! awk -v j="$1" '$1 == "stop" && $3 == j { found = 1 } END { exit !found }' "$D/log"; then
		host=$(awk -v j="$1" '$1 == "start" && $3 == j { print $2; exit }' "$D/log")
		echo "stop $host $1 $end killed" >>"$D/log"
	fi
}

# us: now, in microseconds.
us() {
	echo "${EPOCHREALTIME/./}"
}

# --- Reading the shared log -----------------------------------------------------------
# Jobs ($D/job) append lines "start|stop HOST JOB MICROSECONDS [FENCE]" to $D/log ($LOG on
# a machine), with O_APPEND writes of one short line each, so lines never interleave;
# every machine shares the one clock, so their times compare.

# max_inside LOG: the largest number of jobs between their start and stop marks at once
# (a stop and a start at the same microsecond count as one after the other).
max_inside() {
	sort -k4,4n -k1,1r "$1" | awk '
		$1 == "start" { n++; if (n > max) max = n }
		$1 == "stop" { n-- }
		END { print max + 0 }'
}

# assert_inside_at_most LOG N
assert_inside_at_most() {
	local got
	got=$(max_inside "$1")
	((got <= $2)) || fail "up to $got jobs inside at once, expected at most $2; log:
$(sort -k4,4n "$1")"
}

# time_of LOG KIND HOST [JOB]: the microseconds of that mark (the first one).
time_of() {
	awk -v k="$2" -v h="$3" -v j="${4:-}" '$1 == k && $2 == h && (j == "" || $3 == j) { print $4; exit }' "$1"
}

# wait_for_line FILE PATTERN [SECONDS]: poll until a line of FILE matches PATTERN (ERE).
wait_for_line() {
	local i limit=${3:-10}
	for ((i = 0; i < limit * 50; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	fail "no line matching '$2' in $1 after $limit s; it holds: $(cat "$1" 2>/dev/null)"
}

# wait_for_file FILE [SECONDS]: poll until FILE is not empty; 1 if it still is then.
wait_for_file() {
	local i limit=${2:-10}
	for ((i = 0; i < limit * 50; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.02
	done
	return 1
}

# queue_length NAME: the waiters queued on NAME, from status --json.
queue_length() {
	"$HELPER" status --json "$1" 2>/dev/null | jq -r '.waiters // empty'
}

# wait_for_queue NAME N [SECONDS]: poll until N waiters are queued on NAME.
wait_for_queue() {
	local i limit=${3:-10}
	for ((i = 0; i < limit * 50; i++)); do
		[[ $(queue_length "$1") == "$2" ]] && return 0
		sleep 0.02
	done
	fail "expected $2 waiters queued on $1 after $limit s, have '$(queue_length "$1")'"
}

# assert_idle_keys NAME REFERENCE: NAME, with no holder nor waiter left, has the same
# keys as REFERENCE, an idle name that has been waited on and posted: anything more (a
# waiter's bell, a lease, an empty queue kept by hand) is a leak.
assert_idle_keys() {
	local got want
	got=$(redis_key_suffixes "${1#redis:}")
	want=$(redis_key_suffixes "${2#redis:}")
	[[ $got == "$want" ]] || fail "keys of $1 beyond an idle name's: $(comm -23 <(echo "$got") <(echo "$want") | tr '\n' ' ')(idle: ${want//$'\n'/ })"
}

# idle_reference: a name that has been waited on and posted, for assert_idle_keys;
# prints it. Fails (status 1, one line on stderr) if it can't be made.
idle_reference() {
	local ref
	ref=$(fleet_name ref)
	if ! "$HELPER" init "$ref" 2 >/dev/null || ! "$HELPER" wait "$ref" || ! "$HELPER" post "$ref"; then
		echo "idle_reference: cannot init, wait on and post $ref" >&2
		return 1
	fi
	echo "$ref"
}
