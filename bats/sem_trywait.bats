#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_trywait NAME: decrements without waiting. Returns 0 or 1. Silent (a one-line reason
# with SEM_VERBOSE=1).

load test_helper

@test "sem_trywait takes a count when the counter is above 0: 0, silent, decremented" {
	sem_init "$D/s" 2
	run --separate-stderr sem_trywait "$D/s"
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 1
	run --separate-stderr sem_trywait "$D/s"
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_trywait at 0 returns 1 immediately, silent, counter still 0" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_trywait "$D/s"
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	run sem_peek "$D/s"
	assert_output 0
	# Nobody was left waiting behind it.
	assert_equal "$(waiters "$D/s")" 0
}

@test "sem_trywait takes exactly as many counts as there are" {
	sem_init "$D/s" 3
	local i ok=0
	for ((i = 0; i < 5; i++)); do
		if sem_trywait "$D/s"; then
			ok=$((ok + 1))
		fi
	done
	assert_equal "$ok" 3
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_trywait on a relative NAME uses \$HOME" {
	sem_init "$HOME/rel" 1
	run --separate-stderr sem_trywait rel
	assert_success
	assert_silent
	run sem_peek "$HOME/rel"
	assert_output 0
}

@test "sem_trywait on a missing name returns 1, silent" {
	run --separate-stderr sem_trywait "$D/missing"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/missing" ]
	run --separate-stderr sem_trywait "$D/nodir/missing"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_trywait ""
	assert_failure 1
	assert_silent
	run --separate-stderr sem_trywait "$D/"
	assert_failure 1
	assert_silent
}

@test "sem_trywait on a stale name or a file that is not a record returns 1, silent" {
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_trywait "$D/s"
	assert_failure 1
	assert_silent
	echo "not a semaphore" >"$D/file"
	run --separate-stderr sem_trywait "$D/file"
	assert_failure 1
	assert_silent
	assert_equal "$(cat "$D/file")" "not a semaphore"
}

@test "with SEM_VERBOSE=1 a failing sem_trywait prints exactly one line on stderr" {
	sem_init "$D/s" 0
	export SEM_VERBOSE=1
	run --separate-stderr sem_trywait "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_trywait "$D/s"
	assert_failure 1
	assert_one_line_stderr
	sem_post "$D/s"
	run --separate-stderr sem_trywait "$D/s"
	assert_success
	assert_silent
}

@test "sem_trywait with the wrong number of arguments returns 1, silent, taking nothing" {
	sem_init "$D/s" 1
	run --separate-stderr sem_trywait
	assert_failure 1
	assert_silent
	run --separate-stderr sem_trywait "$D/s" 0
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 1
}

@test "sem_trywait works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 1
		sem_trywait "$1/s"
		rc=0
		sem_trywait "$1/s" || rc=$?
		echo "empty=$rc"
		if ! sem_trywait "$1/missing"; then echo "missing=1"; fi
		echo "value=$(sem_peek "$1/s")"
		sem_destroy "$1/s"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'empty=1\nmissing=1\nvalue=0\ndone'
}
