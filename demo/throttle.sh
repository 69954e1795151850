#!/usr/bin/env bash
# make demo: 8 jobs throttled through one semaphore of 3 slots with sem_run.
# Each job holds a slot exactly while it runs. Job 3 is a runaway that we kill with -9:
# the kernel gives its slot back at once, and the next waiting job starts.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=sh/sem.sh
source "$here/../sh/sem.sh"

jobs_total=8 slots=3
work=$(mktemp -d "${TMPDIR:-/tmp}/sem-demo.XXXXXX")
slot_name=$work/slots
log=$work/log
trap 'sem_destroy "$slot_name" 2>/dev/null || true; rm -rf "$work"' EXIT

go='' red='' end=''
if [[ -t 1 ]]; then go=$'\e[32m' red=$'\e[31m' end=$'\e[0m'; fi
t0=$EPOCHREALTIME
stamp() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.2fs", b - a }'; }

# work N SECONDS: a job's body, a shell function run by sem_run while it holds a slot.
work() {
	printf '%s start %d\n' "$EPOCHREALTIME" "$1" >>"$log"
	printf '%s  job %d  %sstarts%s  (free slots now %s)\n' "$(stamp)" "$1" "$go" "$end" "$(sem_peek "$slot_name")"
	sleep "$2"
	printf '%s end %d\n' "$EPOCHREALTIME" "$1" >>"$log"
	printf '%s  job %d  done after %ss\n' "$(stamp)" "$1" "$2"
}

# runaway: job 3, an external program that would hold its slot for a minute. sem_run
# takes the count in its own process and execs the program, so the count belongs to the
# program: the pid it writes is the one that holds the slot.
runaway() {
	# shellcheck disable=SC2016 # expanded by the inner bash, on purpose
	sem_run "$slot_name" bash -c 'printf "%s start 3\n" "$EPOCHREALTIME" >>"$1"; echo $$ >"$2"; exec sleep 60' \
		_ "$log" "$work/runaway.pid" || true
}

sem_init "$slot_name" "$slots"
printf 'sem demo: %d jobs, at most %d at once (semaphore %s)\n\n' "$jobs_total" "$slots" "$slot_name"
durations=(1.0 0.6 0 0.8 0.5 1.0 0.7 0.9)
for ((i = 1; i <= jobs_total; i++)); do
	if ((i == 3)); then
		printf '%s  job 3  a runaway: would hold its slot for 60 s\n' "$(stamp)"
		runaway &
	else
		printf '%s  job %d  waiting for a slot\n' "$(stamp)" "$i"
		sem_run "$slot_name" work "$i" "${durations[i - 1]}" &
	fi
	sleep 0.02
done

# Kill the runaway with -9 after a while: no trap, no cleanup code runs in it.
sleep 1.2
runaway_pid=$(<"$work/runaway.pid")
# Stamped before the kill: the slot can't come back before the process is dead.
killed_at=$EPOCHREALTIME
printf '%s end 3\n' "$killed_at" >>"$log"
kill -9 "$runaway_pid"
printf '%s  job 3  %skilled with -9%s (pid %d); its slot comes back from the kernel\n' "$(stamp)" "$red" "$end" "$runaway_pid"
wait

printf '\nWho ran when (one column = 0.1 s, # = holding a slot):\n'
awk -v t0="$t0" -v n="$jobs_total" '
	$2 == "start" { s[$3] = $1 - t0 } $2 == "end" { e[$3] = $1 - t0; if (e[$3] > last) last = e[$3] }
	END {
		for (j = 1; j <= n; j++) {
			line = ""
			for (c = 0; c * 0.1 < last; c++) line = line ((c * 0.1 + 0.05 >= s[j] && c * 0.1 + 0.05 < e[j]) ? "#" : ".")
			printf "  job %d  %s%s\n", j, line, (j == 3 ? "  <- killed -9" : "")
		}
	}' "$log"

# The first job to start after the kill took the runaway's slot.
next=$(awk -v k="$killed_at" '$2 == "start" && $1 >= k { print $1; exit }' <(sort -n "$log"))
# The invariant, checked from the log: never more than 3 jobs inside at once.
max=$(sort -n "$log" | awk '$2 == "start" { n++; if (n > m) m = n } $2 == "end" { n-- } END { print m }')
printf '\nslot of the killed job back in use after %s ms\n' \
	"$(awk -v a="$killed_at" -v b="${next:-$killed_at}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
printf 'most jobs running at once: %d (limit %d); all %d done in %s; free slots at the end: %s\n' \
	"$max" "$slots" "$jobs_total" "$(stamp)" "$(sem_peek "$slot_name")"
if ((max > slots)) || [[ -z $next ]] || [[ $(sem_peek "$slot_name") != "$slots" ]]; then
	echo "demo FAILED: the limit was exceeded or a slot was lost" >&2
	exit 1
fi
