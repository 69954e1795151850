#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_status NAME, the contract every kind keeps: describes a live semaphore on stdout
# (its first line "NAME: live", its value) and returns 0; returns 1 with one stderr line
# when there is nothing to describe. `semctl-helper status --json` gives the value, and
# the waiters where the kind can count them (null where it can't).

load ../test_helper
load kind

# json_is JSON PYEXPR: the Python expression PYEXPR, over d (the parsed JSON), is true.
json_is() {
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
		fail "not ($2) in: $1"
}

@test "sem_status describes a live semaphore on stdout and returns 0" {
	local s
	s=$(sem_name s)
	sem_init "$s" 3
	run --separate-stderr sem_status "$s"
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^.*: live$'
	assert_output --regexp $'\n  value: +3\n'
	sem_trywait "$s"
	run --separate-stderr sem_status "$s"
	assert_success
	assert_output --regexp $'\n  value: +2\n'
}

@test "status --json: one line with the value and state; waiters a count, or null where the kind can't tell" {
	local s
	s=$(sem_name s)
	sem_init "$s" 3
	run --separate-stderr "$HELPER" status --json "$s"
	assert_success
	assert_equal "$stderr" ""
	[[ $output != *$'\n'* ]] || fail "more than one line: $output"
	json_is "$output" "d['value'] == 3 and d['state'] == 'live'"
	case $SEM_TEST_KIND in
	posix) json_is "$output" "d['waiters'] is None" ;;
	*) json_is "$output" "d['waiters'] == 0" ;;
	esac
}

@test "sem_status shows the blocked waiters and the value 0 while they wait" {
	require_capability waiters
	local s
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w1" "$s" 30
	bg_wait "$D/w2" "$s" 30
	wait_for_blocked "$s" 2
	assert_equal "$(waiters_of "$s")" 2
	run --separate-stderr sem_status "$s"
	assert_success
	assert_equal "$stderr" ""
	assert_output --regexp $'\n  value: +0\n'
	assert_output --regexp $'\n  waiters: +2 blocked\n'
	run --separate-stderr "$HELPER" status --json "$s"
	json_is "$output" "d['waiters'] == 2 and d['value'] == 0"
	sem_post "$s" 2
	await "$D/w1"
	await "$D/w2"
}

@test "a missing or empty name: sem_status returns 1 with one line on stderr, nothing on stdout" {
	local m
	m=$(sem_name missing)
	run --separate-stderr sem_status "$m"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_status ""
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr "$HELPER" status --json "$m"
	assert_failure 3
	assert_one_line_stderr
	run --separate-stderr sem_peek "$m"
	assert_failure 1
}

@test "sem_status with the wrong number of arguments returns 1 and one usage line" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_status
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_status "$s" "$s"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_status works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 4
		sem_status "$1" | grep -E "^  value: +4$"
		rc=0
		sem_status "$2" 2>/dev/null || rc=$?
		echo "missing=$rc"
		sem_destroy "$1"
		echo done
	' _ "$(sem_name s)" "$(sem_name missing)"
	assert_success
	assert_equal "$stderr" ""
	assert_output --regexp $'^  value: +4\nmissing=1\ndone$'
}
