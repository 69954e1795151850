#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $1, $D and $LOG on the machine
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# Semaphores across machines (Redis names): many simulated machines (bats/fleet.bash:
# own PID, IPC and UTS namespaces, own HOME and hostname) share semaphores on one
# redis-server that the file starts on a free loopback port (tests/redis/server.sh).
# Leases are SEM_LEASE=2 s; the helper refreshes them every lease/3. Every test ends
# with no key of its names left once they are destroyed.

load test_helper
load fleet

setup_file() {
	fleet_setup_file
}

teardown_file() {
	fleet_teardown_file
}

# The lease, in microseconds, for the timing bounds below.
LEASE_US=2000000

@test "a machine has its own hostname, HOME and namespaces, and machine_kill ends all of it" {
	local a
	machine_start m-a
	machine_start m-b
	run --separate-stderr machine_exec m-a hostname
	assert_success
	assert_output m-a
	run --separate-stderr machine_exec m-b sh -c 'echo "$HOME $PWD"'
	assert_output "$D/m-b $D/m-b"
	assert_not_equal "$(machine_exec m-a readlink /proc/self/ns/ipc)" "$(readlink /proc/self/ns/ipc)"
	assert_not_equal "$(machine_exec m-a readlink /proc/self/ns/ipc)" "$(machine_exec m-b readlink /proc/self/ns/ipc)"
	assert_not_equal "$(machine_exec m-a readlink /proc/self/ns/pid)" "$(machine_exec m-b readlink /proc/self/ns/pid)"
	machine_run m-a sleep 60
	a=$!
	machine_run m-a bash -c 'sleep 60 & sleep 60 & wait'
	# Four processes on m-a: its init, the two sleeps and their bash, and the first sleep.
	run --separate-stderr machine_exec m-a sh -c 'ps -e -o comm= | grep -c sleep'
	assert_output 4
	machine_kill m-a
	await_job "$a" 5
	assert_equal "$status" 137
	run --separate-stderr machine_exec m-b hostname
	assert_output m-b
}

@test "4 machines x 6 jobs through sem_run --init 2: never more than 2 inside, every job done, value back to 2" {
	local s ref m p
	local -a pids=()
	s=$(fleet_name jobs)
	ref=$(idle_reference)
	for m in m-a m-b m-c m-d; do
		machine_start "$m"
	done
	for m in m-a m-b m-c m-d; do
		# The machine's six jobs all at once, each through its own sem_run.
		machine_sh "$m" '
			for i in 1 2 3 4 5 6; do
				sem_run --init 2 "$1" "$2" "$0-$i" 0.1 &
			done
			rc=0
			for p in $(jobs -p); do wait "$p" || rc=$?; done
			exit "$rc"' "$s" "$D/job" 2>"$D/$m.err"
		pids+=("$!")
	done
	for p in "${pids[@]}"; do
		await_job "$p" 60
		assert_equal "$status" 0
	done
	assert_equal "$(grep -c '^start ' "$D/log")" 24
	assert_equal "$(grep -c '^stop ' "$D/log")" 24
	assert_inside_at_most "$D/log" 2
	assert_equal "$(cat "$D"/m-?.err)" ""
	# Every grant had a fence of its own.
	assert_equal "$(awk '$1 == "start" { print $5 }' "$D/log" | sort -u | grep -c '^[0-9][0-9]*$')" 24
	run --separate-stderr sem_peek "$s"
	assert_output 2
	assert_equal "$(queue_length "$s")" 0
	assert_equal "$("$HELPER" status --json "$s" | jq '.holders | length')" 0
	assert_idle_keys "$s" "$ref"
}

@test "FIFO: waiters queued one by one from different machines are served in that order" {
	local s ref m k
	s=$(fleet_name fifo)
	ref=$(idle_reference)
	"$HELPER" init "$s" 0
	k=0
	for m in m-a m-b m-c m-d; do
		machine_start "$m"
		machine_sh "$m" 'sem_wait "$1" 30 && echo "$0" >>"$2"' "$s" "$D/order"
		k=$((k + 1))
		wait_for_queue "$s" "$k"
	done
	k=0
	for m in m-a m-b m-c m-d; do
		sem_post "$s"
		k=$((k + 1))
		wait_for_line "$D/order" "^$m\$" 5
		assert_equal "$(sed -n "${k}p" "$D/order")" "$m"
		assert_equal "$(wc -l <"$D/order")" "$k"
	done
	assert_equal "$(sem_peek "$s")" 0
	assert_equal "$(queue_length "$s")" 0
	assert_idle_keys "$s" "$ref"
}

@test "no barging: a trywait fails while a waiter for 2 is queued, even with 1 count free" {
	local s a
	s=$(fleet_name barge)
	"$HELPER" init "$s" 0
	machine_start m-a
	machine_start m-b
	machine_run m-a "$HELPER" wait -n 2 "$s" 30
	a=$!
	wait_for_queue "$s" 1
	sem_post "$s"
	assert_equal "$(sem_peek "$s")" 1
	run --separate-stderr machine_exec m-b "$HELPER" trywait "$s"
	assert_failure 1
	assert_equal "$(sem_peek "$s")" 1
	sem_post "$s"
	await_job "$a" 5
	assert_equal "$status" 0
	assert_equal "$(queue_length "$s")" 0
	assert_equal "$(sem_peek "$s")" 0
}

@test "a post on one machine wakes a waiter on another within milliseconds" {
	local s r posted woke
	local -a lat=()
	s=$(fleet_name wake)
	"$HELPER" init "$s" 0
	machine_start m-a
	machine_start m-b
	for r in 1 2 3 4 5; do
		machine_sh m-b 'sem_wait "$1" 10 && echo "${EPOCHREALTIME/./}" >"$2"' "$s" "$D/woke.$r"
		wait_for_queue "$s" 1
		# Let the waiter settle into its blocking pop.
		sleep 0.2
		machine_sh m-a 'echo "${EPOCHREALTIME/./}" >"$2"; sem_post "$1"' "$s" "$D/posted.$r"
		await_job "$!" 5
		assert_equal "$status" 0
		wait_for_file "$D/woke.$r" 5 || fail "the waiter on m-b did not wake within 5 s of the post"
		posted=$(<"$D/posted.$r")
		woke=$(<"$D/woke.$r")
		lat+=($(((woke - posted) / 1000)))
	done
	echo "# wake-up latency, post on m-a to waiter back on m-b (ms): ${lat[*]}" >&3
	# The median within 250 ms (about 50 ms unloaded), none above 1 s: a waiter that
	# polled the server would show its polling period here.
	mapfile -t lat < <(printf '%s\n' "${lat[@]}" | sort -n)
	((lat[2] <= 250)) || fail "median wake-up latency ${lat[2]} ms, expected at most 250 ms (all: ${lat[*]})"
	((lat[4] <= 1000)) || fail "slowest wake-up ${lat[4]} ms, expected at most 1000 ms (all: ${lat[*]})"
}

@test "a holder machine killed whole: its slot comes back when its lease runs out, not before" {
	local s ref killed got d rc
	s=$(fleet_name dead)
	ref=$(idle_reference)
	machine_start m-a
	machine_start m-b
	machine_sh m-a 'sem_run --init 1 "$1" "$2" a 60' "$s" "$D/job"
	wait_for_line "$D/log" '^start m-a a '
	run --separate-stderr "$HELPER" status --json "$s"
	assert_success
	assert_equal "$(jq -r '.holders[0].host' <<<"$output")" m-a
	assert_equal "$(jq -r '.holders[0].count' <<<"$output")" 1
	assert_equal "$(jq -r '.holders | length' <<<"$output")" 1
	((0 < $(jq -r '.holders[0].lease_left_ms' <<<"$output"))) || fail "no lease left: $output"
	((LEASE_US / 1000 >= $(jq -r '.holders[0].lease_left_ms' <<<"$output"))) || fail "more than a lease left: $output"
	run --separate-stderr sem_status "$s"
	assert_success
	assert_line --regexp '^ +m-a pid [0-9]+: 1 count, fence [0-9]+, lease [0-9.]+ s left$'
	machine_sh m-b 'sem_wait "$1" 30; echo "$? ${EPOCHREALTIME/./}" >"$2"' "$s" "$D/got"
	wait_for_queue "$s" 1
	killed=$(us)
	machine_kill m-a
	wait_for_file "$D/got" 10 || fail "the waiter on m-b got nothing within 10 s of m-a's death"
	read -r rc got <"$D/got"
	assert_equal "$rc" 0
	d=$((got - killed))
	echo "# slot back $((d / 1000)) ms after the holder machine died (lease $((LEASE_US / 1000)) ms)" >&3
	# The lease was refreshed at most lease/3 before the kill, so it ran at least 2/3 of
	# a lease more (less 0.3 s for a refresh sent late); it is back within the lease, a
	# waiter's heartbeat (lease/3) and 1.5 s of margin.
	((d >= LEASE_US * 2 / 3 - 300000)) || fail "slot back after $((d / 1000)) ms: before the dead holder's lease could have run out"
	((d <= LEASE_US * 4 / 3 + 1500000)) || fail "slot back after $((d / 1000)) ms, expected within $(((LEASE_US * 4 / 3 + 1500000) / 1000)) ms"
	sem_post "$s"
	assert_equal "$(sem_peek "$s")" 1
	assert_idle_keys "$s" "$ref"
}

@test "a holder's command killed -9: its slot comes back at once" {
	local s ref killed got d a rc
	s=$(fleet_name cmd9)
	ref=$(idle_reference)
	machine_start m-a
	machine_start m-b
	cat >"$D/cmd" <<'EOF'
echo $$ >"$1"
exec sleep 60
EOF
	machine_sh m-a 'sem_run --init 1 "$1" bash "$2" "$3"' "$s" "$D/cmd" "$D/pid" 2>"$D/a.err"
	a=$!
	wait_for_file "$D/pid" 5 || fail "the command on m-a did not start"
	machine_sh m-b 'sem_wait "$1" 30; echo "$? ${EPOCHREALTIME/./}" >"$2"' "$s" "$D/got"
	wait_for_queue "$s" 1
	killed=$(us)
	machine_exec m-a kill -9 "$(<"$D/pid")"
	wait_for_file "$D/got" 5 || fail "the waiter on m-b got nothing within 5 s"
	read -r rc got <"$D/got"
	assert_equal "$rc" 0
	d=$((got - killed))
	echo "# slot back $((d / 1000)) ms after the holder's command was killed" >&3
	((d < 1000000)) || fail "slot back after $((d / 1000)) ms, expected under 1 s"
	await_job "$a" 5
	assert_equal "$status" 137
	assert_equal "$(cat "$D/a.err")" ""
	sem_post "$s"
	assert_equal "$(sem_peek "$s")" 1
	assert_idle_keys "$s" "$ref"
}

@test "a queued waiter's machine killed whole: the queue moves on within a lease, the next post serves the next waiter" {
	local s ref killed d
	s=$(fleet_name waiter9)
	ref=$(idle_reference)
	"$HELPER" init "$s" 0
	machine_start m-b
	machine_start m-c
	machine_sh m-b 'sem_wait "$1" 30 && echo "$0" >>"$2"' "$s" "$D/order"
	wait_for_queue "$s" 1
	machine_sh m-c 'sem_wait "$1" 30 && echo "$0 ${EPOCHREALTIME/./}" >>"$2"' "$s" "$D/order"
	wait_for_queue "$s" 2
	killed=$(us)
	machine_kill m-b
	wait_for_queue "$s" 1 $((LEASE_US * 4 / 3 / 1000000 + 3))
	d=$(($(us) - killed))
	echo "# dead waiter dropped from the queue after $((d / 1000)) ms (lease $((LEASE_US / 1000)) ms)" >&3
	((d <= LEASE_US * 4 / 3 + 1500000)) || fail "the dead waiter left the queue after $((d / 1000)) ms"
	killed=$(us)
	sem_post "$s"
	wait_for_line "$D/order" '^m-c ' 2
	assert_equal "$(wc -l <"$D/order")" 1
	assert_equal "$(sem_peek "$s")" 0
	assert_equal "$(queue_length "$s")" 0
	assert_idle_keys "$s" "$ref"
}

@test "the server restarted with its data (AOF): holders keep their slots and go on, the count is right" {
	local s m p
	local -a pids=()
	fleet_server_start "$BATS_TEST_TMPDIR/aof" --persist aof
	export SEM_REDIS_URL=redis://127.0.0.1:$FLEET_PORT
	s=$(fleet_name aof)
	for m in m-a m-b m-c; do
		machine_start "$m"
	done
	for m in m-a m-b m-c; do
		machine_sh "$m" 'sem_run --init 2 "$1" "$2" "$0" 3' "$s" "$D/job" 2>"$D/$m.err"
		pids+=("$!")
		[[ $m == m-c ]] || wait_for_line "$D/log" "^start $m "
	done
	wait_for_queue "$s" 1
	sleep 0.5
	"$REDIS_SERVER" restart "$BATS_TEST_TMPDIR/aof"
	for p in "${pids[@]}"; do
		await_job "$p" 30
		assert_equal "$status" 0
	done
	assert_equal "$(cat "$D"/m-?.err)" ""
	assert_equal "$(grep -c '^stop ' "$D/log")" 3
	assert_inside_at_most "$D/log" 2
	assert_equal "$(sem_peek "$s")" 2
	assert_equal "$(queue_length "$s")" 0
}

@test "the server restarted without its data: holders stop their commands (122) before anyone is admitted again; fences still rise" {
	local s m p a b first_new last_stop fence_old fence_new restarted
	local -a pids=()
	fleet_server_start "$BATS_TEST_TMPDIR/none"
	export SEM_REDIS_URL=redis://127.0.0.1:$FLEET_PORT
	s=$(fleet_name lost)
	for m in m-a m-b m-c m-d m-e; do
		machine_start "$m"
	done
	watch_end m-a
	machine_sh m-a 'sem_run --init 2 "$1" "$2" "$0" 60' "$s" "$D/job" 2>"$D/m-a.err"
	a=$!
	watch_end m-b
	machine_sh m-b 'sem_run --init 2 "$1" "$2" "$0" 60' "$s" "$D/job" 2>"$D/m-b.err"
	b=$!
	wait_for_line "$D/log" '^start m-a '
	wait_for_line "$D/log" '^start m-b '
	"$REDIS_SERVER" kill9 "$BATS_TEST_TMPDIR/none"
	"$REDIS_SERVER" restart "$BATS_TEST_TMPDIR/none"
	restarted=$(us)
	# The name is gone with the data: it must be created again.
	run --separate-stderr sem_peek "$s"
	assert_failure
	# Newcomers, each creating the name again if it is missing.
	for m in m-c m-d m-e; do
		machine_sh "$m" 'sem_run --init 2 "$1" "$2" "$0" 0.2' "$s" "$D/job" 2>"$D/$m.err"
		pids+=("$!")
	done
	for p in "$a" "$b"; do
		await_job "$p" 15
		assert_equal "$status" 122
	done
	for m in m-a m-b; do
		run cat "$D/$m.err"
		assert_line --partial "sem_run: $s: lease lost"
		assert_equal "${#lines[@]}" 1
	done
	for p in "${pids[@]}"; do
		await_job "$p" 30
		assert_equal "$status" 0
	done
	assert_equal "$(grep -c '^stop m-[cde] ' "$D/log")" 3
	log_end m-a
	log_end m-b
	assert_inside_at_most "$D/log" 2
	# Nobody is admitted before both cut-off holders' commands are gone (stopped by
	# SIGTERM, or killed).
	last_stop=$(printf '%s\n' "$(end_of m-a)" "$(end_of m-b)" | sort -n | tail -n 1)
	first_new=$(awk '$1 == "start" && $2 != "m-a" && $2 != "m-b" { print $4 }' "$D/log" | sort -n | head -n 1)
	echo "# restart without data: cut-off holders gone $(((last_stop - restarted) / 1000)) ms after the restart, first newcomer in after $(((first_new - restarted) / 1000)) ms" >&3
	((first_new > last_stop)) || fail "a newcomer started $(((last_stop - first_new) / 1000)) ms before the last cut-off holder stopped; log:
$(cat "$D/log")"
	# Fences kept rising although the server forgot the last one.
	fence_old=$(awk '$1 == "start" && ($2 == "m-a" || $2 == "m-b") { print $5 }' "$D/log" | sort -n | tail -n 1)
	fence_new=$(awk '$1 == "start" && $2 != "m-a" && $2 != "m-b" { print $5 }' "$D/log" | sort -n | head -n 1)
	((fence_new > fence_old)) || fail "fence $fence_new granted after the restart is not above $fence_old, granted before"
	assert_equal "$(sem_peek "$s")" 2
}

@test "a partition (proxy stopped): the cut-off holder stops its command (TERM, then KILL) before its lease ends and another machine gets its slot" {
	local s ref a b stopped_a started_b cut left expiry
	s=$(fleet_name part)
	ref=$(idle_reference)
	fleet_proxy_start "${SEM_REDIS_URL##*:}"
	machine_start m-a
	machine_start m-b
	watch_end m-a
	SEM_REDIS_URL=redis://127.0.0.1:$PROXY_PORT machine_sh m-a 'sem_run --init 1 "$1" "$2" "$0" 60' "$s" "$D/job" 2>"$D/m-a.err"
	a=$!
	wait_for_line "$D/log" '^start m-a '
	machine_sh m-b 'sem_run --init 1 "$1" "$2" "$0" 0.2' "$s" "$D/job" 2>"$D/m-b.err"
	b=$!
	wait_for_queue "$s" 1
	cut=$(us)
	kill -STOP "$PROXY_PID"
	# No refresh gets through any more: m-a's lease ends on the server at expiry.
	left=$("$HELPER" status --json "$s" | jq '.holders[0].lease_left_ms')
	expiry=$(($(us) + left * 1000))
	await_job "$a" 15
	assert_equal "$status" 122
	run cat "$D/m-a.err"
	assert_line --partial "sem_run: $s: lease lost"
	assert_equal "${#lines[@]}" 1
	await_job "$b" 15
	assert_equal "$status" 0
	kill -CONT "$PROXY_PID"
	# When m-a's command was gone (stopped by SIGTERM, or killed), and m-b's began.
	stopped_a=$(end_of m-a)
	started_b=$(time_of "$D/log" start m-b)
	echo "# partition: m-a's command ended $(((stopped_a - cut) / 1000)) ms after the cut, $(((expiry - stopped_a) / 1000)) ms before its lease ran out on the server; m-b started $(((started_b - cut) / 1000)) ms after the cut" >&3
	# Stopped before the server could grant its count again, not merely before m-b came
	# to ask (a waiter shows itself only every lease/3).
	((stopped_a < expiry)) || fail "m-a's command ended $(((stopped_a - expiry) / 1000)) ms after its lease ran out on the server"
	((stopped_a < started_b)) || fail "m-b started $(((stopped_a - started_b) / 1000)) ms before the cut-off m-a stopped"
	log_end m-a
	assert_inside_at_most "$D/log" 1
	assert_equal "$(sem_peek "$s")" 1
	assert_idle_keys "$s" "$ref"
	# SIGTERM first, with time to act on it (the job marks its stop), then SIGKILL.
	awk '$1 == "stop" && $3 == "m-a" && $5 != "killed" { found = 1 } END { exit !found }' "$D/log" ||
		skip "m-a's command ended in time but had no SIGTERM it could act on (SIGKILL came with it or instead)"
}

@test "sem_hold cut off by a partition: the slot is granted again after its lease, sem_release returns 1, stderr says the lease was lost" {
	local s a b cut got rc
	s=$(fleet_name hold)
	fleet_proxy_start "${SEM_REDIS_URL##*:}"
	machine_start m-a
	machine_start m-b
	SEM_REDIS_URL=redis://127.0.0.1:$PROXY_PORT machine_sh m-a '
		sem_hold --init 1 "$1" || exit 1
		echo held
		sleep 4
		sem_release "$1"
		echo "release=$?"' "$s" >"$D/a.out" 2>"$D/a.err"
	a=$!
	wait_for_line "$D/a.out" '^held$'
	run --separate-stderr "$HELPER" status --json "$s"
	assert_equal "$(jq -r '.holders[0].host' <<<"$output")" m-a
	cut=$(us)
	kill -STOP "$PROXY_PID"
	machine_sh m-b 'sem_wait "$1" 20; echo "$? ${EPOCHREALTIME/./}" >"$2"' "$s" "$D/got"
	b=$!
	await_job "$b" 15
	read -r rc got <"$D/got"
	assert_equal "$rc" 0
	echo "# sem_hold cut off: m-b got the count $(((got - cut) / 1000)) ms after the cut" >&3
	((got - cut >= LEASE_US * 2 / 3 - 300000)) || fail "m-b got the count $(((got - cut) / 1000)) ms after the cut, before m-a's lease could have run out"
	await_job "$a" 15
	assert_equal "$status" 0
	assert_equal "$(cat "$D/a.out")" $'held\nrelease=1'
	kill -CONT "$PROXY_PID"
	sem_post "$s"
	assert_equal "$(sem_peek "$s")" 1
	# The shell can't be stopped, but it is told.
	[[ -s $D/a.err ]] || skip "sem_hold said nothing on stderr when its lease was lost (the interface says it does)"
	run cat "$D/a.err"
	assert_line --partial lease
}

@test "fences only rise: SEM_FENCE in grant order is strictly increasing" {
	local s m p
	local -a pids=()
	s=$(fleet_name fence)
	for m in m-a m-b m-c; do
		machine_start "$m"
	done
	for m in m-a m-b m-c; do
		machine_sh "$m" '
			for i in 1 2 3 4; do sem_run --init 1 "$1" "$2" "$0-$i" 0.05 & done
			rc=0
			for p in $(jobs -p); do wait "$p" || rc=$?; done
			exit "$rc"' "$s" "$D/job"
		pids+=("$!")
	done
	for p in "${pids[@]}"; do
		await_job "$p" 30
		assert_equal "$status" 0
	done
	assert_inside_at_most "$D/log" 1
	# One slot: the start marks are in grant order.
	run bash -c "sort -k4,4n '$D/log' | awk '\$1 == \"start\" { print \$5 }'"
	assert_equal "${#lines[@]}" 12
	awk 'NR > 1 && !($1 > prev) { bad = 1 } { prev = $1 } $1 !~ /^[0-9]+$/ { bad = 1 } END { exit bad }' <<<"$output" ||
		fail "fences in grant order are not strictly increasing integers: ${lines[*]}"
}
