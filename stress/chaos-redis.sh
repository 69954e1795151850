#!/usr/bin/env bash
# chaos-redis.sh DURATION_SECONDS: a Redis semaphore shared by 3 simulated machines
# under random kills (issue 11).
#
# One redis-server on a free loopback port (tests/redis/server.sh, stopped by pid at the
# end), one name redis:NAME of value K, SEM_LEASE short (CHAOS_LEASE). Three machines,
# each a process tree of its own (unshare: PID, UTS and IPC namespaces, its own hostname
# and HOME), each with W workers that loop on `sem_run [-w 0.5] redis:NAME JOB`. JOB
# (this script, --job) appends "start" with its pid, its helper's pid and SEM_FENCE to
# a shared log, sleeps 10-80 ms, and appends "stop" (also when told to stop by SIGTERM).
#
# Meanwhile the killer, every 0.2-0.8 s, does one of (3, 3, 2 and 2 times in 10):
#   - SIGKILL a holder's helper (`semctl-helper run` with its command running); the
#     command dies with it (the helper's parent-death signal) and the slot comes back
#     when the lease runs out;
#   - SIGKILL a holder's command (the JOB); the helper gives the slot back at once;
#   - SIGKILL a waiter (`semctl-helper run` still queued); its heartbeat stops and the
#     server drops it from the queue;
#   - CLIENT KILL ID of a random client connection from CLIENT LIST (not its own): a
#     waiter's blocking pop or a holder's refresh loses its connection mid-call.
# A dead holder's helper or a dead waiter ties its count up for up to a lease, so more
# blows would leave the slots to the dead most of the time. Every kill is logged with its time, taken after kill(2) returned, so that a JOB killed
# (itself, or through its helper) is counted inside until then: the check can only
# overcount.
#
# At the end: the workers finish their round and exit, the machines end; after one lease
# (the slots of killed holders), the checks:
#   - never more than K JOBs inside at once, from the shared log (starts, stops, kills);
#   - no fence granted twice, and fences rise in the order of the starts;
#   - value exactly K, no waiter, no holder;
#   - the name's keys: only those of an idle name (no leftover bell, lease or waiter);
#     after sem_destroy, none at all (a key that expires by itself within a minute is
#     reported, not failed);
#   - no stray process, no helper panic.
# Prints one summary line; exits 1 if a check failed, 2 on usage errors or when it can't
# run (it needs root for the namespaces, and redis-server).
#
# Environment: CHAOS_K (3), CHAOS_WORKERS (3 per machine), CHAOS_LEASE (2, seconds),
# CHAOS_KEEP=1 keeps the work directory (logs) for inspection.
set -u
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HELPER=$REPO/target/release/semctl-helper
SELF=$REPO/stress/chaos-redis.sh
SERVER=$REPO/tests/redis/server.sh

# --job: the command run under the lease.
if [[ ${1:-} == --job ]]; then
	mark() { printf '%s %s %s %s %s %s\n' "$1" "${EPOCHREALTIME/./}" "$$" "$PPID" "$CHAOS_HOST" "${SEM_FENCE:-}" >>"$CHAOS_DIR/log"; }
	trap 'mark stop; exit 143' TERM
	mark start
	sleep "0.0$((RANDOM % 8 + 1))" &
	wait $!
	mark stop
	exit 0
fi

# --worker: one loop of sem_run on a machine, until the stop file appears. Each outcome
# is one byte appended to a file named after the status.
if [[ ${1:-} == --worker ]]; then
	# shellcheck source=sh/sem.sh
	source "$REPO/sh/sem.sh"
	while [[ ! -e $CHAOS_DIR/stop ]]; do
		w=()
		((RANDOM % 4 == 0)) && w=(-w 0.5)
		rc=0
		sem_run "${w[@]}" "$CHAOS_NAME" "$SELF" --job 2>>"$CHAOS_DIR/err.$HOSTNAME" || rc=$?
		printf x >>"$CHAOS_DIR/rc.$rc"
	done
	exit 0
fi

# --machine NAME W: the first process of a machine's namespaces: W workers, then reap.
if [[ ${1:-} == --machine ]]; then
	hostname "$2" || exit 1
	export HOSTNAME=$2 CHAOS_HOST=$2 HOME=$CHAOS_DIR/home/$2
	mkdir -p "$HOME"
	cd "$HOME" || exit 1
	for ((i = 0; i < $3; i++)); do
		bash "$SELF" --worker &
	done
	: >"$CHAOS_DIR/ready.$2"
	# As a PID namespace's init, reap whatever is reparented here until the workers end.
	while [[ -n $(jobs -pr) ]]; do wait -n 2>/dev/null || true; done
	exit 0
fi

# max_inside LOG: "MAX UNENDED STARTS": the most JOBs inside at once, how many had no end
# (counted inside to the end), and how many started. A JOB's end is its stop mark, or
# else the first kill of it or of its helper after its start. At one microsecond, ends
# count before starts.
max_inside() {
	local un
	un=$(mktemp)
	awk '
		$1 == "start" { p = $5 ":" $3; s[p] = $2; h[p] = $5 ":" $4; n++ }
		$1 == "stop" { e[$5 ":" $3] = $2 }
		$1 == "kill" { kt[$3] = ($3 in kt) ? kt[$3] " " $2 : $2 }
		END {
			for (p in s) {
				end = (p in e) ? e[p] : ""
				if (end == "") {
					best = ""
					m = split((p in kt ? kt[p] : "") " " (h[p] in kt ? kt[h[p]] : ""), c, " ")
					for (i = 1; i <= m; i++) if (c[i] != "" && c[i] + 0 >= s[p] + 0 && (best == "" || c[i] + 0 < best)) best = c[i] + 0
					end = best
				}
				if (end == "") { unended++; end = 9e18 }
				printf "%.0f 1\n%.0f -1\n", s[p], end
			}
			print unended + 0, n + 0 >"/dev/stderr"
		}' "$1" 2>"$un" | sort -k1,1n -k2,2n | awk '{ n += $2; if (n > m) m = n } END { printf "%d ", m + 0 }'
	cat "$un"
	rm -f "$un"
}

# ---- the killer ----

if [[ $# != 1 || ! $1 =~ ^[0-9]+$ || $1 == 0 ]]; then
	echo "usage: chaos-redis.sh DURATION_SECONDS" >&2
	exit 2
fi
if [[ ! -x $HELPER ]]; then
	echo "chaos-redis.sh: $HELPER is missing (run make)" >&2
	exit 2
fi
if [[ $(id -u) != 0 ]] || ! unshare --ipc --uts --pid --fork --mount-proc true 2>/dev/null; then
	echo "chaos-redis.sh: needs root, to make the machines' namespaces (unshare)" >&2
	exit 2
fi
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	echo "chaos-redis.sh: redis-server and redis-cli are needed (make deps-redis)" >&2
	exit 2
fi

DURATION=$1
K=${CHAOS_K:-3}
W=${CHAOS_WORKERS:-3}
LEASE=${CHAOS_LEASE:-2}
MACHINES=(m1 m2 m3)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sem-chaos-redis.XXXXXX")
FAILURES=()
MACHINE_PIDS=()

fail() {
	FAILURES+=("$*")
	echo "chaos-redis: FAIL: $*" >&2
}

PORT=$("$SERVER" start "$DIR/redis") || exit 2
export SEM_REDIS_URL=redis://127.0.0.1:$PORT SEM_LEASE=$LEASE
export CHAOS_DIR=$DIR CHAOS_NAME=redis:chaos-$$
rcli() { redis-cli -p "$PORT" "$@"; }

# machine_init UNSHARE_PID: that machine's first process (tests/redis/machine.bash).
# shellcheck source=tests/redis/machine.bash
source "$REPO/tests/redis/machine.bash"
machine_init() { machine_first "$1" --machine; }

# machine_kill UNSHARE_PID: every process of that machine, at once.
machine_kill() {
	local init
	init=$(machine_init "$1") && kill -9 "$init" 2>/dev/null
	kill -9 "$1" 2>/dev/null
}

cleanup() {
	local p
	for p in "${MACHINE_PIDS[@]}"; do
		machine_kill "$p"
	done
	wait 2>/dev/null
	"$SERVER" stop "$DIR/redis"
	if [[ ${CHAOS_KEEP:-} == 1 ]]; then
		echo "chaos-redis: logs kept in $DIR" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The name's keys on the server, without their "sem:{NAME}:" head, one a line.
key_suffixes() {
	rcli --scan --pattern "sem:{$1}:*" | sed "s/^sem:{$1}://" | sort
}

# A fresh server grants nothing for one lease: wait until a trywait is granted.
"$HELPER" init "$CHAOS_NAME" "$K" || exit 2
REF=redis:chaos-ref-$$
"$HELPER" init "$REF" 1 || exit 2
for ((i = 0; i < 1000; i++)); do
	"$HELPER" trywait "$REF" 2>/dev/null && break
	sleep 0.01
done
"$HELPER" post "$REF" || exit 2
# The keys of an idle name that has been waited on and posted: the reference for the end.
IDLE_KEYS=$(key_suffixes "${REF#redis:}")

for m in "${MACHINES[@]}"; do
	unshare --ipc --uts --pid --fork --mount-proc bash "$SELF" --machine "$m" "$W" \
		</dev/null >>"$DIR/out.$m" 2> >(grep -v 'sigprocmask unblock failed' >>"$DIR/err.$m") &
	MACHINE_PIDS+=("$!")
done
for m in "${MACHINES[@]}"; do
	for ((i = 0; i < 500; i++)); do
		[[ -e $DIR/ready.$m ]] && break
		sleep 0.01
	done
done

declare -A STRUCK=() # kind -> count
SAMPLES=0 MAX_SEEN=0

# scan: the run's helpers and commands, from /proc (global pids): S_HOLDER (helpers
# whose command runs), S_WAITER (helpers still queued), S_JOB (commands).
scan() {
	local d pid stat comm args kids
	S_HOLDER=() S_WAITER=() S_JOB=()
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		{ read -r stat <"$d/stat"; } 2>/dev/null || continue
		comm=${stat#*(}
		comm=${comm%%)*}
		case $comm in semctl-helper | bash) ;; *) continue ;; esac
		{ mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null || continue
		if [[ $comm == semctl-helper && ${args[1]:-} == run && " ${args[*]} " == *" $CHAOS_NAME "* ]]; then
			kids=$(<"$d/task/$pid/children") 2>/dev/null || kids=''
			if [[ -n $kids ]]; then S_HOLDER+=("$pid"); else S_WAITER+=("$pid"); fi
		elif [[ $comm == bash && ${args[1]:-} == "$SELF" && ${args[2]:-} == --job ]]; then
			S_JOB+=("$pid")
		fi
	done
}

# ns_id PID: "HOST:PID" of a process on a machine, as the JOBs log themselves: the
# machine's name (CHAOS_HOST in its environment) and its pid there (the last of NSpid).
ns_id() {
	local e host='' line
	{ mapfile -d '' -t e <"/proc/$1/environ"; } 2>/dev/null || return 1
	for line in "${e[@]}"; do
		[[ $line == CHAOS_HOST=* ]] && host=${line#CHAOS_HOST=}
	done
	while IFS= read -r line; do
		if [[ $line == NSpid:* ]]; then
			echo "$host:${line##*[[:space:]]}"
			return 0
		fi
	done <"/proc/$1/status"
	return 1
}

# killed PID KIND: SIGKILL PID and log it, with the time after kill(2) returned.
killed() {
	local id
	id=$(ns_id "$1") || return 0
	kill -9 "$1" 2>/dev/null || return 0
	printf 'kill %s %s %s\n' "${EPOCHREALTIME/./}" "$id" "$2" >>"$DIR/log"
	STRUCK[$2]=$((${STRUCK[$2]:-0} + 1))
}

# strike: one random blow.
strike() {
	local pick ids
	case $((RANDOM % 10)) in
	[0-2])
		scan
		((${#S_HOLDER[@]})) && killed "${S_HOLDER[RANDOM % ${#S_HOLDER[@]}]}" holder-helper
		;;
	[3-5])
		scan
		((${#S_JOB[@]})) && killed "${S_JOB[RANDOM % ${#S_JOB[@]}]}" holder-command
		;;
	[6-7])
		scan
		((${#S_WAITER[@]})) && killed "${S_WAITER[RANDOM % ${#S_WAITER[@]}]}" waiter
		;;
	*)
		# Every client but the one listing (ours): helpers' connections.
		mapfile -t ids < <(rcli CLIENT LIST | awk '!/cmd=client\|list/ { sub(/^id=/, "", $1); print $1 }')
		((${#ids[@]})) || return 0
		pick=${ids[RANDOM % ${#ids[@]}]}
		if [[ $(rcli CLIENT KILL ID "$pick") == 1 ]]; then
			STRUCK[connection]=$((${STRUCK[connection]:-0} + 1))
		fi
		;;
	esac
}

# sample: the value must never exceed K.
sample() {
	local v
	v=$("$HELPER" peek "$CHAOS_NAME" 2>/dev/null) || return 0
	((v > MAX_SEEN)) && MAX_SEEN=$v
	((v > K)) && fail "value $v > $K (a count was invented)"
	SAMPLES=$((SAMPLES + 1))
}

START=$EPOCHREALTIME
END_US=$((${START/./} + DURATION * 1000000))
while ((${EPOCHREALTIME/./} < END_US)); do
	strike
	((RANDOM % 4 == 0)) && sample
	sleep "0.$((RANDOM % 7 + 2))"
done

# ---- the end: the workers finish their round; the machines end ----
touch "$DIR/stop"
STOPPED_AT=$EPOCHREALTIME
for p in "${MACHINE_PIDS[@]}"; do
	for ((i = 0; i < 3000; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$p" 2>/dev/null; then
		fail "machine (unshare pid $p) still running 30 s after the stop"
		machine_kill "$p"
	fi
done
wait "${MACHINE_PIDS[@]}" 2>/dev/null
MACHINE_PIDS=()
scan
((${#S_HOLDER[@]} + ${#S_WAITER[@]} + ${#S_JOB[@]} == 0)) ||
	fail "stray processes: helpers ${S_HOLDER[*]} ${S_WAITER[*]}, commands ${S_JOB[*]}"
SETTLE=$(awk -v a="$STOPPED_AT" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# The slots of killed holders come back when their leases run out: one lease at most.
sleep "$LEASE"
sleep 0.5
js=$("$HELPER" status --json "$CHAOS_NAME") || fail "status failed"
VALUE=$("$HELPER" peek "$CHAOS_NAME")
WAITERS=$(sed -n 's/.*"waiters":\([0-9]*\).*/\1/p' <<<"$js")
HOLDERS=$(grep -o '"host":' <<<"$js" | wc -l)
[[ $VALUE == "$K" ]] || fail "value $VALUE one lease after the end, not $K"
[[ $WAITERS == 0 ]] || fail "$WAITERS waiters left"
((HOLDERS == 0)) || fail "holders left: $js"
KEYS=$(key_suffixes "chaos-$$")
[[ $KEYS == "$IDLE_KEYS" ]] || fail "keys beyond an idle name's: [$(xargs <<<"$KEYS")] (idle: [$(xargs <<<"$IDLE_KEYS")])"
"$HELPER" destroy "$CHAOS_NAME" || fail "destroy failed"
"$HELPER" destroy "$REF" || fail "destroy of the reference failed"
LEFT='' SHORT=''
while IFS= read -r key; do
	[[ -n $key ]] || continue
	ttl=$(rcli PTTL "$key")
	if [[ $ttl == -1 ]] || ((ttl > 60000)); then LEFT+=" $key"; else SHORT+=" $key"; fi
done < <(rcli --scan --pattern "sem:{chaos-*")
[[ -z $LEFT ]] || fail "keys left after sem_destroy:$LEFT"

# The log: never more than K inside. A JOB's end is its stop mark, or else the kill of
# it or of its helper (the first after its start); one with neither counts to the end.
read -r MAX_INSIDE UNENDED STARTS < <(max_inside "$DIR/log")
((MAX_INSIDE <= K)) || fail "up to $MAX_INSIDE commands inside at once (limit $K)"
# Fences: unique, and rising in the order the commands started.
DUP=$(awk '$1 == "start" { print $6 }' "$DIR/log" | sort | uniq -d | head -3 | xargs)
[[ -z $DUP ]] || fail "fences granted twice: $DUP"
DESC=$(sort -k2,2n "$DIR/log" | awk '$1 == "start" { if ($6 + 0 < last + 0) d++; last = $6 } END { print d + 0 }')
if grep -q panicked "$DIR"/err.* 2>/dev/null; then
	fail "a helper panicked: $(grep -h panicked "$DIR"/err.* | head -3)"
fi

bytes() { stat -c %s "$1" 2>/dev/null || echo 0; }
RCS=''
for f in "$DIR"/rc.*; do
	[[ -e $f ]] && RCS+="${RCS:+,}${f##*/rc.}:$(bytes "$f")"
done
ELAPSED=$(awk -v a="$START" -v b="$STOPPED_AT" 'BEGIN { printf "%.0f", b - a }')
echo "chaos-redis: ${ELAPSED}s K=$K lease=${LEASE}s machines=${#MACHINES[@]}x${W} workers;" \
	"SIGKILL holder-helper=${STRUCK[holder-helper]:-0} holder-command=${STRUCK[holder-command]:-0} waiter=${STRUCK[waiter]:-0};" \
	"CLIENT KILL=${STRUCK[connection]:-0}; commands started $STARTS, most inside at once $MAX_INSIDE/$K" \
	"(unended $UNENDED); fences out of order $DESC; sem_run status(rc:n)=${RCS:-none};" \
	"value final $VALUE/$K (max seen $MAX_SEEN, $SAMPLES samples) waiters $WAITERS holders $HOLDERS;" \
	"keys left after destroy: ${LEFT:-none} (expiring:${SHORT:- none}); settle ${SETTLE}s; ${#FAILURES[@]} failures"
if compgen -G "$DIR/err.*" >/dev/null && [[ -n $(cat "$DIR"/err.*) ]]; then
	cat "$DIR"/err.* | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -6 | sed 's/^/chaos-redis: stderr: /'
fi
((${#FAILURES[@]} == 0))
