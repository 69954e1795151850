#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_peek NAME, the contract every kind keeps: the counter and a newline on stdout, 0; on
# failure 1 and nothing on stdout. Nothing on stderr (one line with SEM_VERBOSE=1).

load ../test_helper
load kind

@test "sem_peek prints the counter and a newline, returns 0, stderr empty" {
	local s bytes
	s=$(sem_name s)
	sem_init "$s" 3
	run --separate-stderr sem_peek "$s"
	assert_success
	assert_output 3
	assert_equal "$stderr" ""
	# run strips trailing newlines; check the exact bytes: the digits and one newline.
	bytes=$(sem_peek "$s" | od -An -c | tr -s ' ')
	assert_equal "$bytes" " 3 \\n"
}

@test "sem_peek prints 0 and the kind's largest value, the bounds" {
	local zero max out
	zero=$(sem_name zero) max=$(sem_name max)
	sem_init "$zero" 0
	sem_init "$max" "$(value_max)"
	out=$(
		sem_peek "$zero"
		echo x
	)
	assert_equal "$out" $'0\nx'
	out=$(
		sem_peek "$max"
		echo x
	)
	assert_equal "$out" "$(value_max)"$'\nx'
}

@test "sem_peek follows the counter and doesn't change it" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run sem_peek "$s"
	assert_output 1
	run sem_peek "$s"
	assert_output 1
	sem_post "$s"
	run sem_peek "$s"
	assert_output 2
	sem_trywait "$s"
	sem_trywait "$s"
	run --separate-stderr sem_peek "$s"
	assert_success
	assert_output 0
	assert_equal "$stderr" ""
}

@test "sem_peek on a missing or empty name returns 1 with nothing on stdout or stderr" {
	local name
	for name in "$(sem_name missing)" ""; do
		run --separate-stderr sem_peek "$name"
		assert_failure 1
		assert_silent
	done
}

@test "with SEM_VERBOSE=1 a failing sem_peek prints one line on stderr and nothing on stdout" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	export SEM_VERBOSE=1
	run --separate-stderr sem_peek "$(sem_name missing)"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_peek "$s"
	assert_success
	assert_output 2
	assert_equal "$stderr" ""
}

@test "sem_peek with the wrong number of arguments returns 1, silent" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	run --separate-stderr sem_peek
	assert_failure 1
	assert_silent
	run --separate-stderr sem_peek "$s" "$s"
	assert_failure 1
	assert_silent
}

@test "sem_peek works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 7
		v=$(sem_peek "$1")
		echo "value=$v"
		sem_peek "$1" | cat
		rc=0
		v=$(sem_peek "$2") || rc=$?
		echo "missing=$rc [$v]"
		sem_destroy "$1"
		echo done
	' _ "$(sem_name s)" "$(sem_name missing)"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'value=7\n7\nmissing=1 []\ndone'
}
