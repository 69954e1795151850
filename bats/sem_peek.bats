#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_peek NAME: writes the counter and a newline to stdout and returns 0. On failure
# returns 1 and writes nothing to stdout. Nothing on stderr (a one-line reason with
# SEM_VERBOSE=1).

load test_helper

@test "sem_peek prints the counter and a newline, returns 0, stderr empty" {
	sem_init "$D/s" 3
	run --separate-stderr sem_peek "$D/s"
	assert_success
	assert_output 3
	assert_equal "$stderr" ""
	# run strips trailing newlines; check the exact bytes: the digits and one newline.
	local bytes
	bytes=$(sem_peek "$D/s" | od -An -c | tr -s ' ')
	assert_equal "$bytes" " 3 \\n"
}

@test "sem_peek prints 0 and 32767, the bounds" {
	sem_init "$D/zero" 0
	sem_init "$D/max" 32767
	local out
	out=$(sem_peek "$D/zero"; echo x)
	assert_equal "$out" $'0\nx'
	out=$(sem_peek "$D/max"; echo x)
	assert_equal "$out" $'32767\nx'
}

@test "sem_peek follows the counter and doesn't change it" {
	sem_init "$D/s" 1
	run sem_peek "$D/s"
	assert_output 1
	run sem_peek "$D/s"
	assert_output 1
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 2
	sem_trywait "$D/s"
	sem_trywait "$D/s"
	run --separate-stderr sem_peek "$D/s"
	assert_success
	assert_output 0
	assert_equal "$stderr" ""
}

@test "sem_peek on a relative NAME reads under \$HOME" {
	sem_init "$HOME/rel" 4
	run --separate-stderr sem_peek rel
	assert_success
	assert_output 4
	assert_equal "$stderr" ""
}

@test "sem_peek on a missing name returns 1 with nothing on stdout or stderr" {
	run --separate-stderr sem_peek "$D/missing"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/missing" ]
}

@test "sem_peek on a bad name returns 1 with nothing on stdout or stderr" {
	local name
	for name in "" "$D/" "$D/nodir/s" "$D"; do
		run --separate-stderr sem_peek "$name"
		assert_failure 1
		assert_silent
	done
}

@test "sem_peek on a stale name (its kernel set removed by ipcrm) returns 1, silent" {
	sem_init "$D/s" 5
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_peek "$D/s"
	assert_failure 1
	assert_silent
}

@test "sem_peek on a file that is not a record returns 1, silent, and leaves it alone" {
	printf '5\n' >"$D/file"
	run --separate-stderr sem_peek "$D/file"
	assert_failure 1
	assert_silent
	assert_equal "$(cat "$D/file")" 5
}

@test "with SEM_VERBOSE=1 a failing sem_peek prints one line on stderr and nothing on stdout" {
	sem_init "$D/s" 2
	export SEM_VERBOSE=1
	run --separate-stderr sem_peek "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_peek "$D/s"
	assert_success
	assert_output 2
	assert_equal "$stderr" ""
}

@test "sem_peek with the wrong number of arguments returns 1, silent" {
	sem_init "$D/s" 2
	run --separate-stderr sem_peek
	assert_failure 1
	assert_silent
	run --separate-stderr sem_peek "$D/s" "$D/s"
	assert_failure 1
	assert_silent
}

@test "sem_peek works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 7
		v=$(sem_peek "$1/s")
		echo "value=$v"
		sem_peek "$1/s" | cat
		rc=0
		v=$(sem_peek "$1/missing") || rc=$?
		echo "missing=$rc [$v]"
		sem_destroy "$1/s"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'value=7\n7\nmissing=1 []\ndone'
}
