#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_destroy NAME, the contract every kind keeps: removes the semaphore; 0 and silence,
# or 1 and one line on stderr. Processes blocked in sem_wait on it return 1 promptly.

load ../test_helper
load kind

@test "sem_destroy removes the semaphore, silent; every operation then fails; it can be made again" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_destroy "$s"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$s"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_post "$s"
	assert_failure 1
	run --separate-stderr sem_trywait "$s"
	assert_failure 1
	run --separate-stderr sem_wait "$s" 0.1
	assert_failure 1
	run --separate-stderr sem_init "$s" 2
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 2
}

@test "sem_destroy on a missing or empty name returns 1 with one line on stderr" {
	local name
	for name in "$(sem_name missing)" ""; do
		run --separate-stderr sem_destroy "$name"
		assert_failure 1
		assert_one_line_stderr
	done
}

@test "sem_destroy twice: the second returns 1 with one line" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	sem_destroy "$s"
	run --separate-stderr sem_destroy "$s"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_destroy makes all blocked waiters return 1 promptly" {
	local s t0 w rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w1" "$s"
	bg_wait "$D/w2" "$s" -1
	bg_wait "$D/w3" "$s" 30
	wait_for_blocked "$s" 3
	t0=$(now)
	run --separate-stderr sem_destroy "$s"
	assert_success
	assert_silent
	for w in w1 w2 w3; do
		await "$D/$w"
		# shellcheck disable=SC2034 # start (the waiter's own start time) is not checked here
		read -r rc start end <"$D/$w"
		assert_equal "$rc" 1
		assert_elapsed "$t0" "$end" 0 1
		assert_waiter_silent "$D/$w"
	done
	run --separate-stderr sem_peek "$s"
	assert_failure 1
}

@test "atomic destroy: of 10 concurrent sem_destroys exactly one returns 0" {
	local s i
	s=$(sem_name s)
	sem_init "$s" 1
	mkdir "$D/rc"
	for i in $(seq 1 10); do
		bg bash -c 'source "$1"; sem_destroy "$2" 2>/dev/null; echo $? >"$3"' \
			_ "$REPO_ROOT/sh/sem.sh" "$s" "$D/rc/$i"
	done
	wait
	assert_equal "$(cat "$D"/rc/* | sort | uniq -c | awk '{ print $2 "x" $1 }' | xargs)" '0x1 1x9'
	run sem_peek "$s"
	assert_failure 1
}

@test "sem_destroy with the wrong number of arguments returns 1 with one line, removing nothing" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_destroy
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_destroy "$s" "$s"
	assert_failure 1
	assert_one_line_stderr
	run sem_peek "$s"
	assert_success
	assert_output 1
}

@test "sem_destroy works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 1
		sem_destroy "$1"
		rc=0
		sem_destroy "$1" 2>/dev/null || rc=$?
		echo "again=$rc"
		sem_peek "$1" || echo gone
		echo done
	' _ "$(sem_name s)"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'again=1\ngone\ndone'
}
