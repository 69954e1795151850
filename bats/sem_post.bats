#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_post NAME: increments the counter and wakes the next waiter; returns 0 or 1;
# prints nothing on stdout or stderr (a one-line reason with SEM_VERBOSE=1).

load test_helper

@test "sem_post increments the counter, silent on stdout and stderr" {
	sem_init "$D/s" 0
	run --separate-stderr sem_post "$D/s"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$D/s"
	assert_output 1
	run --separate-stderr sem_post "$D/s"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$D/s"
	assert_output 2
}

@test "sem_post on a relative NAME posts under \$HOME" {
	sem_init "$HOME/rel" 0
	run --separate-stderr sem_post rel
	assert_success
	assert_silent
	run sem_peek "$HOME/rel"
	assert_output 1
}

@test "sem_post on a missing name returns 1, silent" {
	run --separate-stderr sem_post "$D/missing"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/missing" ]
	run --separate-stderr sem_post "$D/nodir/missing"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_post ""
	assert_failure 1
	assert_silent
	run --separate-stderr sem_post "$D/"
	assert_failure 1
	assert_silent
}

@test "sem_post on a stale name returns 1, silent" {
	sem_init "$D/s" 0
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_post "$D/s"
	assert_failure 1
	assert_silent
}

@test "sem_post on a file that is not a record returns 1, silent, and leaves it alone" {
	echo "not a semaphore" >"$D/file"
	run --separate-stderr sem_post "$D/file"
	assert_failure 1
	assert_silent
	assert_equal "$(cat "$D/file")" "not a semaphore"
}

@test "sem_post at 32767 returns 1, silent, and leaves the counter unchanged" {
	sem_init "$D/s" 32766
	run --separate-stderr sem_post "$D/s"
	assert_success
	assert_silent
	run --separate-stderr sem_post "$D/s"
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 32767
}

@test "sem_post without permission returns 1, silent, and leaves the counter unchanged" {
	reachable_by_nobody
	sem_init "$D/s" 1
	run --separate-stderr as_nobody_sem sem_post "$D/s"
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 1
}

@test "with SEM_VERBOSE=1 a failing sem_post prints exactly one line on stderr" {
	sem_init "$D/full" 32767
	export SEM_VERBOSE=1
	local name
	for name in "$D/missing" "$D/full"; do
		run --separate-stderr sem_post "$name"
		assert_failure 1
		assert_equal "$output" ""
		assert_equal "${#stderr_lines[@]}" 1
		assert_stderr_one_line
	done
}

@test "with SEM_VERBOSE=1 a successful sem_post is still silent" {
	sem_init "$D/s" 0
	SEM_VERBOSE=1 run --separate-stderr sem_post "$D/s"
	assert_success
	assert_silent
}

@test "sem_post wakes a blocked waiter within 0.1 s" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s"
	wait_for_waiters "$D/s" 1
	local t0
	t0=$(now)
	sem_post "$D/s"
	await "$D/w"
	local rc start end
	# shellcheck disable=SC2034 # start (the waiter's own start time) is not checked here
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 0.1
	assert_equal "$(cat "$D/w.stdout" "$D/w.stderr")" ""
	# The waiter took the count.
	run sem_peek "$D/s"
	assert_output 0
}

@test "one sem_post wakes one waiter, the next post the other" {
	sem_init "$D/s" 0
	bg_wait "$D/w1" "$D/s"
	bg_wait "$D/w2" "$D/s"
	wait_for_waiters "$D/s" 2
	sem_post "$D/s"
	wait_for_waiters "$D/s" 1
	local i
	for ((i = 0; i < 500; i++)); do
		[[ -e $D/w1 || -e $D/w2 ]] && break
		sleep 0.01
	done
	local returned
	returned=$(find "$D" -maxdepth 1 -name 'w[12]' | wc -l)
	assert_equal "$returned" 1
	run sem_peek "$D/s"
	assert_output 0
	sem_post "$D/s"
	await "$D/w1"
	await "$D/w2"
	local rc1 rc2 rest
	read -r rc1 rest <"$D/w1"
	read -r rc2 rest <"$D/w2"
	assert_equal "$rc1 $rc2" "0 0"
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_post with the wrong number of arguments returns 1, silent" {
	sem_init "$D/s" 0
	run --separate-stderr sem_post
	assert_failure 1
	assert_silent
	run --separate-stderr sem_post "$D/s" "$D/s"
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_post works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 32766
		sem_post "$1/s"
		rc=0
		sem_post "$1/s" || rc=$?
		echo "at limit=$rc"
		rc=0
		sem_post "$1/missing" || rc=$?
		echo "missing=$rc"
		echo "value=$(sem_peek "$1/s")"
		sem_destroy "$1/s"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'at limit=1\nmissing=1\nvalue=32767\ndone'
}

# sem_post NAME N: adds N (1..32767) in one step, waking up to N waiters.

@test "sem_post NAME 5 releases 5 blocked waiters at once; the value ends 0" {
	sem_init "$D/s" 0
	local i
	for i in 1 2 3 4 5; do
		bg_wait "$D/w$i" "$D/s" 30
	done
	wait_for_waiters "$D/s" 5
	local t0
	t0=$(now)
	run --separate-stderr sem_post "$D/s" 5
	assert_success
	assert_silent
	local rc end
	for i in 1 2 3 4 5; do
		await "$D/w$i" 5
		read -r rc _ end <"$D/w$i"
		assert_equal "$rc" 0
		assert_elapsed "$t0" "$end" 0 1
	done
	assert_equal "$(waiters "$D/s")" 0
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_post NAME 2 with 3 blocked waiters releases exactly 2" {
	sem_init "$D/s" 0
	local i
	for i in 1 2 3; do
		bg_wait "$D/w$i" "$D/s" 30
	done
	wait_for_waiters "$D/s" 3
	sem_post "$D/s" 2
	wait_for_waiters "$D/s" 1
	local done_=0
	for ((i = 0; i < 300; i++)); do
		done_=$(find "$D" -maxdepth 1 -name 'w[123]' | wc -l)
		((done_ >= 2)) && break
		sleep 0.01
	done
	sleep 0.1
	assert_equal "$(find "$D" -maxdepth 1 -name 'w[123]' | wc -l)" 2
	run sem_peek "$D/s"
	assert_output 0
	sem_post "$D/s"
	for i in 1 2 3; do
		await "$D/w$i"
	done
}

@test "sem_post NAME N adds N: 2 + 3 is 5; 0 + 32767 is 32767; N may have leading zeros" {
	sem_init "$D/s" 2
	run --separate-stderr sem_post "$D/s" 3
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 5
	sem_init "$D/big" 0
	run --separate-stderr sem_post "$D/big" 32767
	assert_success
	assert_silent
	run sem_peek "$D/big"
	assert_output 32767
	run --separate-stderr sem_post "$D/s" 010
	assert_success
	run sem_peek "$D/s"
	assert_output 15
}

@test "sem_post with a bad N (0, -1, abc, 32768, ...) returns 1, silent, adding nothing" {
	sem_init "$D/s" 4
	local n
	for n in 0 -1 abc 32768 99999999999 '' 1.5 +1 ' 1' '1 ' 0x10 1e3; do
		run --separate-stderr sem_post "$D/s" "$n"
		assert_failure 1
		assert_silent
		run sem_peek "$D/s"
		assert_output 4
	done
}

@test "with SEM_VERBOSE=1 a bad N prints exactly one line on stderr" {
	sem_init "$D/s" 4
	export SEM_VERBOSE=1
	local n
	for n in 0 -1 abc 32768; do
		run --separate-stderr sem_post "$D/s" "$n"
		assert_failure 1
		assert_one_line_stderr
	done
	run sem_peek "$D/s"
	assert_output 4
}

@test "a post of N that would pass 32767 fails and adds nothing (all or nothing)" {
	sem_init "$D/s" 32760
	run --separate-stderr sem_post "$D/s" 8
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 32760
	SEM_VERBOSE=1 run --separate-stderr sem_post "$D/s" 100
	assert_failure 1
	assert_one_line_stderr
	run sem_peek "$D/s"
	assert_output 32760
	run --separate-stderr sem_post "$D/s" 7
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 32767
}

@test "semctl-helper post N: 2 for a bad N, 5 past 32767, one line each, nothing added" {
	"$HELPER" init "$D/s" 32760
	local n
	for n in 0 -1 abc ''; do
		run --separate-stderr "$HELPER" post "$D/s" "$n"
		assert_failure 2
		assert_one_line_stderr
	done
	for n in 8 32768; do
		run --separate-stderr "$HELPER" post "$D/s" "$n"
		assert_failure 5
		assert_one_line_stderr
	done
	run "$HELPER" peek "$D/s"
	assert_output 32760
}
