#!/usr/bin/env bash
# make demo-fleet: 8 jobs on 3 runners through 2 fleet-wide slots of a Redis semaphore.
# Each runner is a machine of its own as far as sem can tell: its own process tree (a PID
# namespace), hostname, HOME and IPC namespace; what they share is one redis-server on a
# free loopback port. Runner-c picks up job 3, a deploy that hangs; we then pull
# runner-c's plug (SIGKILL to every process of it, helper included): nothing is left to
# give its slot back, so the slot comes back when runner-c's lease runs out.
# Needs root (for the namespaces) and redis-server (make deps).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
root=${here%/*}
self=$here/fleet.sh

# A job's body: fleet.sh --job ID SECONDS, run by sem_run on a runner while it holds a
# slot. It logs its start (with the fence sem_run gave it) and its end.
if [[ ${1:-} == --job ]]; then
	# shellcheck source=sh/sem.sh
	source "$root/sh/sem.sh"
	stamp() { awk -v a="$DEMO_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.2fs", b - a }'; }
	printf '%s start %d %s %s\n' "$EPOCHREALTIME" "$2" "$HOSTNAME" "$SEM_FENCE" >>"$DEMO_LOG"
	printf '%s  %s  job %d  %sstarts%s  (fence ...%s; free slots now %s)\n' "$(stamp)" "$HOSTNAME" "$2" \
		"$DEMO_GO" "$DEMO_END" "${SEM_FENCE: -4}" "$(sem_peek "$DEMO_NAME")"
	sleep "$3"
	printf '%s end %d %s\n' "$EPOCHREALTIME" "$2" "$HOSTNAME" >>"$DEMO_LOG"
	printf '%s  %s  job %d  done after %ss\n' "$(stamp)" "$HOSTNAME" "$2" "$3"
	exit 0
fi

# A runner: fleet.sh --runner NAME ID:SECONDS:AT..., the first process of its own PID,
# UTS and IPC namespaces. It queues each job AT seconds after the start, all at once,
# as a runner with several executors would, then waits for them.
if [[ ${1:-} == --runner ]]; then
	hostname "$2"
	export HOSTNAME=$2 HOME=$DEMO_WORK/$2
	mkdir -p "$HOME"
	cd "$HOME"
	# shellcheck source=sh/sem.sh
	source "$root/sh/sem.sh"
	shift 2
	for job in "$@"; do
		IFS=: read -r id secs at <<<"$job"
		(
			sleep "$at"
			printf '%s  %s  job %d  waiting for a slot\n' \
				"$(awk -v a="$DEMO_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.2fs", b - a }')" "$HOSTNAME" "$id"
			sem_run --init "$DEMO_SLOTS" "$DEMO_NAME" "$self" --job "$id" "$secs"
		) &
	done
	wait
	exit 0
fi

if [[ $(id -u) != 0 ]] || ! unshare --ipc --uts --pid --fork --mount-proc true 2>/dev/null; then
	echo "demo-fleet: needs root, to give each runner its own namespaces (unshare)" >&2
	exit 1
fi
command -v redis-server >/dev/null || {
	echo "demo-fleet: redis-server is not installed (make deps installs it)" >&2
	exit 1
}

H=${SEMCTL_HELPER:-$root/target/release/semctl-helper}
[[ -x $H ]] || {
	echo "demo-fleet: no helper at $H (run make build)" >&2
	exit 1
}
jobs_total=8 slots=2 lease=3
work=$(mktemp -d "${TMPDIR:-/tmp}/sem-demo-fleet.XXXXXX")
log=$work/log
: >"$log"
runner_pids=()
# runner_init UNSHARE_PID: that machine's first process (tests/redis/machine.bash).
# shellcheck source=tests/redis/machine.bash
source "$root/tests/redis/machine.bash"
runner_init() { machine_first "$1" --runner; }
cleanup() {
	local p init
	for p in "${runner_pids[@]}"; do
		if init=$(runner_init "$p"); then kill -9 "$init" 2>/dev/null || true; fi
	done
	wait 2>/dev/null || true
	[[ -z ${SEM_REDIS_URL:-} ]] || "$H" destroy "$DEMO_NAME" 2>/dev/null || true
	"$root/tests/redis/server.sh" stop "$work/redis" || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$("$root/tests/redis/server.sh" start "$work/redis")
# shellcheck source=sh/sem.sh
source "$root/sh/sem.sh"
export SEM_REDIS_URL=redis://127.0.0.1:$port SEM_LEASE=$lease
export DEMO_NAME=redis:demo-fleet-$$ DEMO_SLOTS=$slots DEMO_LOG=$log DEMO_WORK=$work
DEMO_GO='' DEMO_END='' red=''
if [[ -t 1 ]]; then DEMO_GO=$'\e[32m' DEMO_END=$'\e[0m' red=$'\e[31m'; fi
export DEMO_GO DEMO_END

printf 'sem fleet demo: %d jobs on 3 runners, at most %d at once across them all\n' "$jobs_total" "$slots"
printf '(semaphore %s on redis-server 127.0.0.1:%s, pid %s; lease %d s)\n' \
	"$DEMO_NAME" "$port" "$("$root/tests/redis/server.sh" pid "$work/redis")" "$lease"
# A server grants nothing during its first lease (it can't know who held what before it
# started): wait that out, so that the timeline starts with the jobs.
printf 'a fresh server grants nothing for one lease: waiting %d s\n\n' "$lease"
sleep "$lease"

# runner NAME ID:SECONDS:AT...: start a runner; its namespaces' first process is the
# child of the unshare started here.
# unshare, seeing its child killed by SIGKILL, tries to die of it too and says it can't:
# that line is noise here.
runner() {
	unshare --ipc --uts --pid --fork --mount-proc "$self" --runner "$@" \
		2> >(grep -v 'sigprocmask unblock failed' >&2) &
	runner_pids+=("$!")
}
DEMO_T0=$EPOCHREALTIME
export DEMO_T0
stamp() { awk -v a="$DEMO_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.2fs", b - a }'; }
# Job 3 would hold its slot for a minute.
runner runner-a 1:1.5:0.0 4:1.5:0.3 6:1.2:0.5 8:0.8:0.7
runner runner-b 2:2.0:0.1 5:1.0:0.4 7:1.0:0.6
runner runner-c 3:60:0.2
c_unshare=${runner_pids[2]}

# Pull the plug once job 3 has held its slot for a second.
for ((i = 0; i < 1500; i++)); do
	grep -q '^[0-9.]* start 3 ' "$log" && break
	sleep 0.02
done
grep -q '^[0-9.]* start 3 ' "$log" || {
	echo "demo-fleet FAILED: job 3 never started" >&2
	exit 1
}
sleep 1
left=$("$H" status --json "$DEMO_NAME" 2>/dev/null | sed -n 's/.*"host":"runner-c","pid":[0-9]*,"fence":[0-9]*,"count":[0-9]*,"lease_left_ms":\([0-9]*\).*/\1/p') || true
c_init=$(runner_init "$c_unshare") || {
	echo "demo-fleet FAILED: runner-c is gone" >&2
	exit 1
}
killed_at=$EPOCHREALTIME
printf '%s end 3 runner-c\n' "$killed_at" >>"$log"
# SIGKILL to the first process of a PID namespace kills every process in it at once.
kill -9 "$c_init"
printf '%s  runner-c  %spowered off%s (kill -9 of all its processes) while job 3 holds a slot; its lease has %s s left\n' \
	"$(stamp)" "$red" "$DEMO_END" "$(awk -v ms="${left:-0}" 'BEGIN { printf "%.1f", ms / 1000 }')"
wait "$c_unshare" 2>/dev/null || true

# Watch the lease run out: runner-c stops being listed as a holder.
back_at=''
for ((i = 0; i < 1000; i++)); do
	if ! "$H" status --json "$DEMO_NAME" | grep -q '"host":"runner-c"'; then
		back_at=$EPOCHREALTIME
		break
	fi
	sleep 0.02
done
printf '%s  runner-c  its lease ran out: the slot is back in the fleet, %.1f s after the kill\n' "$(stamp)" \
	"$(awk -v a="$killed_at" -v b="${back_at:-$killed_at}" 'BEGIN { print b - a }')"
wait

printf '\nWho ran when (one column = 0.2 s, # = holding a slot):\n'
awk -v t0="$DEMO_T0" -v n="$jobs_total" '
	$2 == "start" { s[$3] = $1 - t0; h[$3] = $4 } $2 == "end" { e[$3] = $1 - t0; if (e[$3] > last) last = e[$3] }
	END {
		for (j = 1; j <= n; j++) {
			line = ""
			for (c = 0; c * 0.2 < last; c++) line = line ((c * 0.2 + 0.1 >= s[j] && c * 0.2 + 0.1 < e[j]) ? "#" : ".")
			printf "  job %d  %-8s  %s%s\n", j, h[j], line, (j == 3 ? "  <- its runner killed -9" : "")
		}
	}' "$log"

# The invariant, checked from the log: never more than 2 jobs inside at once, across the
# runners (they share one clock).
max=$(sort -n "$log" | awk '$2 == "start" { n++; if (n > m) m = n } $2 == "end" { n-- } END { print m }')
# The killed job's slot is back when two jobs run at once again after the kill.
both=$(sort -n "$log" | awk -v k="$killed_at" '
	$2 == "start" { n++ } $2 == "end" && $3 != 3 { n-- }
	$1 > k && $2 == "start" && n - 1 >= 2 { print $1; exit }')
done_jobs=$(awk '$2 == "end" && $3 != 3' "$log" | wc -l)
value=$(sem_peek "$DEMO_NAME")
printf '\n2 jobs at once again %s s after the kill (lease %d s)\n' \
	"$(awk -v a="$killed_at" -v b="${both:-$killed_at}" 'BEGIN { printf "%.1f", b - a }')" "$lease"
printf 'most jobs running at once: %d (limit %d); %d of %d jobs done (all but the killed one) in %s; free slots at the end: %s\n' \
	"$max" "$slots" "$done_jobs" "$jobs_total" "$(stamp)" "$value"
if ((max > slots)) || [[ -z $both || -z $back_at ]] || ((done_jobs != jobs_total - 1)) || [[ $value != "$slots" ]]; then
	echo "demo-fleet FAILED: the limit was exceeded, a job was lost or a slot never came back" >&2
	exit 1
fi
