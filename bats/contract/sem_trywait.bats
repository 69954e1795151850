#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_trywait NAME, the contract every kind keeps: takes a count if one is there now,
# never waits. Returns 0 or 1. Silent (a one-line reason with SEM_VERBOSE=1).

load ../test_helper
load kind

@test "sem_trywait takes a count when the counter is above 0: 0, silent, decremented" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	run --separate-stderr sem_trywait "$s"
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 1
	run --separate-stderr sem_trywait "$s"
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 0
}

@test "sem_trywait at 0 returns 1 at once, silent, counter still 0, nobody left waiting" {
	local s t0 t1
	s=$(sem_name s)
	sem_init "$s" 0
	t0=$(now)
	run --separate-stderr sem_trywait "$s"
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	run sem_peek "$s"
	assert_output 0
	# Nothing lingers to swallow the next post.
	sem_post "$s"
	sleep 0.1
	run sem_peek "$s"
	assert_output 1
}

@test "sem_trywait takes exactly as many counts as there are" {
	local s i ok=0
	s=$(sem_name s)
	sem_init "$s" 3
	for ((i = 0; i < 5; i++)); do
		if sem_trywait "$s"; then
			ok=$((ok + 1))
		fi
	done
	assert_equal "$ok" 3
	run sem_peek "$s"
	assert_output 0
}

@test "sem_trywait on a missing or empty name returns 1, silent" {
	local m
	m=$(sem_name missing)
	run --separate-stderr sem_trywait "$m"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_trywait ""
	assert_failure 1
	assert_silent
	run --separate-stderr sem_peek "$m"
	assert_failure 1
}

@test "with SEM_VERBOSE=1 a failing sem_trywait prints exactly one line on stderr" {
	local s
	s=$(sem_name s)
	sem_init "$s" 0
	export SEM_VERBOSE=1
	run --separate-stderr sem_trywait "$(sem_name missing)"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_trywait "$s"
	assert_failure 1
	assert_one_line_stderr
	sem_post "$s"
	run --separate-stderr sem_trywait "$s"
	assert_success
	assert_silent
}

@test "sem_trywait with the wrong number of arguments returns 1, silent, taking nothing" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_trywait
	assert_failure 1
	assert_silent
	run --separate-stderr sem_trywait "$s" 0
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output 1
}

@test "sem_trywait works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 1
		sem_trywait "$1"
		rc=0
		sem_trywait "$1" || rc=$?
		echo "empty=$rc"
		if ! sem_trywait "$2"; then echo "missing=1"; fi
		echo "value=$(sem_peek "$1")"
		sem_destroy "$1"
		echo done
	' _ "$(sem_name s)" "$(sem_name missing)"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'empty=1\nmissing=1\nvalue=0\ndone'
}
