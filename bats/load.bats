#!/usr/bin/env bats
# Load (issue 4): many waiters asleep on one semaphore, and many wait/post rounds through
# one slot. The sizes are small enough for `make test`; `make stress` sets
# SEM_LOAD_WAITERS and SEM_LOAD_ROUNDS for the big run.

load test_helper

# How many background `semctl-helper wait`s, and rounds per mutual-exclusion worker.
WAITERS=${SEM_LOAD_WAITERS:-1000}
ROUNDS=${SEM_LOAD_ROUNDS:-300}

# alive PID: PID exists and is not a zombie (read with a builtin: no fork per pid).
alive() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# need_processes N: skip unless this uid may start N more processes.
need_processes() {
	local max
	max=$(ulimit -u)
	if [[ $max != unlimited ]] && ((max < $1 + 500)); then
		skip "ulimit -u is $max: too low for $1 waiters"
	fi
}

# start_waiters NAME N: start N background `semctl-helper wait NAME`; pids in PIDS.
start_waiters() {
	local i
	PIDS=()
	for ((i = 0; i < $2; i++)); do
		bg "$HELPER" wait "$1"
		PIDS+=("$!")
	done
}

# cpu_ticks: the CPU time (utime + stime, in clock ticks) all of PIDS have used so far.
cpu_ticks() {
	local files=("${PIDS[@]/#//proc/}")
	# The comm field is "(semctl-helper)", without spaces: fields 14 and 15 are utime, stime.
	awk '{ t += $14 + $15 } END { print t + 0 }' "${files[@]/%//stat}"
}

# assert_asleep: over a 2 s window, all of PIDS together use less than 5% of one core.
assert_asleep() {
	local hz before after used limit
	hz=$(getconf CLK_TCK)
	before=$(cpu_ticks)
	sleep 2
	after=$(cpu_ticks)
	used=$((after - before))
	limit=$((hz * 2 * 5 / 100))
	echo "# ${#PIDS[@]} waiters used $used ticks (of $hz per s) in 2 s; limit $limit" >&3
	((used < limit)) || fail "${#PIDS[@]} waiters used $used clock ticks in 2 s (limit $limit)"
}

# await_all SECONDS: wait until every one of PIDS has ended (fail after SECONDS), then
# assert that each exited 0.
await_all() {
	local deadline=$((SECONDS + $1)) pid left bad=0
	while :; do
		left=0
		for pid in "${PIDS[@]}"; do
			if alive "$pid"; then
				left=$((left + 1))
				break
			fi
		done
		((left == 0)) && break
		((SECONDS < deadline)) || fail "waiters still running $1 s after the release"
		sleep 0.05
	done
	for pid in "${PIDS[@]}"; do
		reap "$pid"
		((status == 0)) || bad=$((bad + 1))
	done
	((bad == 0)) || fail "$bad of ${#PIDS[@]} waiters did not exit 0"
}

# many_waiters HOW: WAITERS helpers block on one semaphore without using CPU, and HOW
# (relax, or post N) releases every one of them.
many_waiters() {
	need_processes "$WAITERS"
	sem_init "$D/s" 0
	local t0 t1 t2 t3
	t0=$(now)
	start_waiters "$D/s" "$WAITERS"
	wait_for_waiters "$D/s" "$WAITERS" 120
	t1=$(now)
	assert_asleep
	t2=$(now)
	case $1 in
	relax) "$HELPER" relax "$D/s" ;;
	post) "$HELPER" post "$D/s" "$WAITERS" ;;
	esac
	wait_for_waiters "$D/s" 0 60
	t3=$(now)
	await_all 60
	echo "# $WAITERS waiters: blocked after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s;" \
		"after the $1 the kernel's queue was empty in $(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.2f", b - a }') s," \
		"all had exited 0 in $(awk -v a="$t2" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s" >&3
	run sem_peek "$D/s"
	assert_output 0
	assert_equal "$(waiters "$D/s")" 0
}

@test "load: $WAITERS waiters sleep without CPU and one relax releases every one" {
	many_waiters relax
}

@test "load: $WAITERS waiters sleep without CPU and one post of $WAITERS releases every one" {
	many_waiters post
}

@test "load: 8 workers x $ROUNDS wait/post rounds on one slot, never two inside, value 1" {
	sem_init "$D/s" 1
	echo 0 >"$D/counter"
	local p t0
	t0=$(now)
	for p in 1 2 3 4 5 6 7 8; do
		# Inside the section: mkdir must find no one else's marker, and the counter's
		# read-increment-write must not race (a lost update shows in the final count).
		bg bash -c 'source "$1"
			for ((r = 0; r < $4; r++)); do
				sem_wait "$2" 60 || { echo "wait failed" >>"$3/errors"; exit 1; }
				mkdir "$3/inside" 2>/dev/null || echo "overlap" >>"$3/errors"
				read -r n <"$3/counter"
				echo $((n + 1)) >"$3/counter"
				rmdir "$3/inside" 2>/dev/null || echo "marker gone" >>"$3/errors"
				sem_post "$2" || echo "post failed" >>"$3/errors"
			done' _ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D" "$ROUNDS"
	done
	wait
	echo "# 8 x $ROUNDS rounds in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s" >&3
	[[ ! -e $D/errors ]] || fail "$(sort "$D/errors" | uniq -c)"
	assert_equal "$(cat "$D/counter")" "$((8 * ROUNDS))"
	run sem_peek "$D/s"
	assert_output 1
	assert_equal "$(waiters "$D/s")" 0
}
