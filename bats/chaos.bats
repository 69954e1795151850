#!/usr/bin/env bats
# Faults (issue 4): stress/chaos.sh for 20 s. Workers loop on sem_run (a program and a
# shell function) and on sem_wait/sem_post pairs while random SIGKILL, SIGTERM, SIGINT
# and SIGSTOP/SIGCONT hit the shells, the helpers and the commands. The sem_run
# semaphore must end exactly where it started, the wait/post one within the bounds the
# signals explain, with no waiter, no leaked kernel set and no stray process.
# `make stress` runs the same script for STRESS_SECONDS.

load test_helper

@test "chaos: 20 s of random signals lose no sem_run count, leak no set and no process" {
	run --separate-stderr bash "$REPO_ROOT/stress/chaos.sh" 20
	echo "$stderr" >&2
	echo "$output"
	# The summary goes to the TAP stream, so that every run reports what it did.
	sed 's/^/# /' <<<"$output" >&3
	assert_success
	assert_line --regexp '^chaos: .* 0 failures$'
}
