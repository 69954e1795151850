#!/usr/bin/env bash
# make demo: 8 jobs throttled through one semaphore of 3 slots.
# Each job takes a slot with sem_wait, works for a while, and gives it back with sem_post.
# The waiting jobs sleep in the kernel and start the moment a slot comes free.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=sh/sem.sh
source "$here/../sh/sem.sh"

jobs_total=8 slots=3
work=$(mktemp -d "${TMPDIR:-/tmp}/sem-demo.XXXXXX")
slot_name=$work/slots
log=$work/log
trap 'sem_destroy "$slot_name" 2>/dev/null || true; rm -rf "$work"' EXIT

go='' end=''
if [[ -t 1 ]]; then go=$'\e[32m' end=$'\e[0m'; fi
t0=$EPOCHREALTIME
stamp() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.2fs", b - a }'; }

job() {
	local n=$1 secs=$2
	printf '%s  job %d  waiting for a slot\n' "$(stamp)" "$n"
	sem_wait "$slot_name"
	printf '%s start %d\n' "$EPOCHREALTIME" "$n" >>"$log"
	printf '%s  job %d  %sstarts%s  (free slots now %s)\n' "$(stamp)" "$n" "$go" "$end" "$(sem_peek "$slot_name")"
	sleep "$secs"
	printf '%s end %d\n' "$EPOCHREALTIME" "$n" >>"$log"
	sem_post "$slot_name"
	printf '%s  job %d  done after %ss, slot given back\n' "$(stamp)" "$n" "$secs"
}

sem_init "$slot_name" "$slots"
printf 'sem demo: %d jobs, at most %d at once (semaphore %s)\n\n' "$jobs_total" "$slots" "$slot_name"
durations=(1.0 0.6 1.2 0.8 0.5 1.0 0.7 0.9)
for ((i = 1; i <= jobs_total; i++)); do
	job "$i" "${durations[i - 1]}" &
	sleep 0.02
done
wait

printf '\nWho ran when (one column = 0.1 s, # = holding a slot):\n'
awk -v t0="$t0" '
	$2 == "start" { s[$3] = $1 - t0 } $2 == "end" { e[$3] = $1 - t0; if (e[$3] > last) last = e[$3] }
	END {
		for (j = 1; j <= 8; j++) {
			line = ""
			for (c = 0; c * 0.1 < last; c++) line = line ((c * 0.1 + 0.05 >= s[j] && c * 0.1 + 0.05 < e[j]) ? "#" : ".")
			printf "  job %d  %s\n", j, line
		}
	}' "$log"

# The invariant, checked from the log: never more than 3 jobs inside at once.
max=$(sort -n "$log" | awk '$2 == "start" { n++; if (n > m) m = n } $2 == "end" { n-- } END { print m }')
elapsed=$(stamp)
printf '\nmost jobs running at once: %d (limit %d); all %d done in %s; free slots at the end: %s\n' \
	"$max" "$slots" "$jobs_total" "$elapsed" "$(sem_peek "$slot_name")"
if ((max > slots)); then
	echo "demo FAILED: the limit was exceeded" >&2
	exit 1
fi
