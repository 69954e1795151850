#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_relax NAME, the contract of the kinds that can count their waiters (capability
# relax): releases every process blocked on NAME at this moment; later waiters still
# block. Returns 0 or 1; silent on both streams. Every kind: 1 and silence on failure.

load ../test_helper
load kind

@test "sem_relax releases all 3 blocked waiters promptly; a later waiter still blocks" {
	require_capability relax
	local s i t0 rc end
	s=$(sem_name s)
	sem_init "$s" 0
	for i in 1 2 3; do
		bg_wait "$D/w$i" "$s" 30
	done
	wait_for_blocked "$s" 3
	t0=$(now)
	run --separate-stderr sem_relax "$s"
	assert_success
	assert_silent
	for i in 1 2 3; do
		await "$D/w$i" 5
		read -r rc _ end <"$D/w$i"
		assert_equal "$rc" 0
		assert_elapsed "$t0" "$end" 0 1
		assert_waiter_silent "$D/w$i"
	done
	run sem_peek "$s"
	assert_output 0
	# Nothing was left over for a newcomer.
	run --separate-stderr sem_wait "$s" 0
	assert_failure 1
}

@test "sem_relax with nobody waiting returns 0, silent, and leaves the value unchanged" {
	require_capability relax
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	run --separate-stderr sem_relax "$s"
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 2
}

@test "sem_relax on a missing name, or with the wrong number of arguments, returns 1, silent" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_relax "$(sem_name missing)"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_relax
	assert_failure 1
	assert_silent
	run --separate-stderr sem_relax "$s" "$s"
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output 1
}
