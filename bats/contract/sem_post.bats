#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_post NAME [N], the contract every kind keeps: adds N (default 1), waking as many
# waiters; returns 0 or 1; silent on both streams (a one-line reason with SEM_VERBOSE=1).

load ../test_helper
load kind

@test "sem_post increments the counter, silent on stdout and stderr" {
	local s
	s=$(sem_name s)
	sem_init "$s" 0
	run --separate-stderr sem_post "$s"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$s"
	assert_output 1
	run --separate-stderr sem_post "$s"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$s"
	assert_output 2
}

@test "sem_post on a missing or empty name returns 1, silent, creating nothing" {
	local m
	m=$(sem_name missing)
	run --separate-stderr sem_post "$m"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_peek "$m"
	assert_failure 1
	run --separate-stderr sem_post ""
	assert_failure 1
	assert_silent
}

@test "sem_post at the kind's largest value returns 1, silent, and leaves the counter unchanged" {
	local s max
	s=$(sem_name s) max=$(value_max)
	sem_init "$s" "$((max - 1))"
	run --separate-stderr sem_post "$s"
	assert_success
	assert_silent
	run --separate-stderr sem_post "$s"
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output "$max"
}

@test "with SEM_VERBOSE=1 a failing sem_post prints exactly one line; a successful one stays silent" {
	local s full
	s=$(sem_name s) full=$(sem_name full)
	sem_init "$s" 0
	sem_init "$full" "$(value_max)"
	export SEM_VERBOSE=1
	local name
	for name in "$(sem_name missing)" "$full"; do
		run --separate-stderr sem_post "$name"
		assert_failure 1
		assert_one_line_stderr
	done
	run --separate-stderr sem_post "$s"
	assert_success
	assert_silent
}

@test "sem_post wakes a blocked waiter promptly" {
	local s t0 rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w" "$s"
	wait_for_blocked "$s" 1
	t0=$(now)
	sem_post "$s"
	await "$D/w"
	# shellcheck disable=SC2034 # start (the waiter's own start time) is not checked here
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 0.25
	assert_waiter_silent "$D/w"
	# The waiter took the count.
	run sem_peek "$s"
	assert_output 0
}

@test "one sem_post wakes one waiter, the next post the other" {
	local s i returned rc1 rc2 rest
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w1" "$s"
	bg_wait "$D/w2" "$s"
	wait_for_blocked "$s" 2
	sem_post "$s"
	wait_for_blocked "$s" 1
	for ((i = 0; i < 500; i++)); do
		[[ -e $D/w1 || -e $D/w2 ]] && break
		sleep 0.01
	done
	returned=$(find "$D" -maxdepth 1 -name 'w[12]' | wc -l)
	assert_equal "$returned" 1
	run sem_peek "$s"
	assert_output 0
	sem_post "$s"
	await "$D/w1"
	await "$D/w2"
	read -r rc1 rest <"$D/w1"
	read -r rc2 rest <"$D/w2"
	assert_equal "$rc1 $rc2" "0 0"
	run sem_peek "$s"
	assert_output 0
}

@test "sem_post NAME N adds N: 2 + 3 is 5; N may have leading zeros" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	run --separate-stderr sem_post "$s" 3
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 5
	run --separate-stderr sem_post "$s" 010
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 15
}

@test "sem_post NAME 5 releases 5 blocked waiters; the value ends 0" {
	local s i t0 rc end
	s=$(sem_name s)
	sem_init "$s" 0
	for i in 1 2 3 4 5; do
		bg_wait "$D/w$i" "$s" 30
	done
	wait_for_blocked "$s" 5
	t0=$(now)
	run --separate-stderr sem_post "$s" 5
	assert_success
	assert_silent
	for i in 1 2 3 4 5; do
		await "$D/w$i" 5
		read -r rc _ end <"$D/w$i"
		assert_equal "$rc" 0
		assert_elapsed "$t0" "$end" 0 1
	done
	run sem_peek "$s"
	assert_output 0
}

@test "sem_post with a bad N (0, -1, abc, ...) returns 1, silent, adding nothing; SEM_VERBOSE: one line" {
	local s n
	s=$(sem_name s)
	sem_init "$s" 4
	for n in 0 -1 abc 99999999999 '' 1.5 +1 ' 1' '1 ' 0x10 1e3; do
		run --separate-stderr sem_post "$s" "$n"
		assert_failure 1
		assert_silent
		SEM_VERBOSE=1 run --separate-stderr sem_post "$s" "$n"
		assert_failure 1
		assert_one_line_stderr
	done
	run sem_peek "$s"
	assert_output 4
}

@test "a post of N that would pass the largest value fails and adds nothing (all or nothing)" {
	require_capability atomic_post_n
	local s max
	s=$(sem_name s) max=$(value_max)
	sem_init "$s" "$((max - 7))"
	run --separate-stderr sem_post "$s" 8
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output "$((max - 7))"
	run --separate-stderr sem_post "$s" 7
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output "$max"
}

@test "sem_post with the wrong number of arguments returns 1, silent, adding nothing" {
	local s
	s=$(sem_name s)
	sem_init "$s" 0
	run --separate-stderr sem_post
	assert_failure 1
	assert_silent
	run --separate-stderr sem_post "$s" 1 1
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output 0
}

@test "sem_post works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" "$3"
		sem_post "$1"
		rc=0
		sem_post "$1" || rc=$?
		echo "at limit=$rc"
		rc=0
		sem_post "$2" || rc=$?
		echo "missing=$rc"
		echo "value=$(sem_peek "$1")"
		sem_destroy "$1"
		echo done
	' _ "$(sem_name s)" "$(sem_name missing)" "$(($(value_max) - 1))"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'at limit=1\nmissing=1\nvalue='"$(value_max)"$'\ndone'
}
