#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_relax NAME: release every process blocked in sem_wait on NAME at this moment, as if
# posted once for each; later waiters still block. Returns 0 (also when nobody waits) or
# 1; silent on both streams (the reason on stderr with SEM_VERBOSE=1).

load test_helper

@test "sem_relax releases all 5 blocked waiters promptly; the value ends 0" {
	sem_init "$D/s" 0
	local i
	for i in 1 2 3 4 5; do
		bg_wait "$D/w$i" "$D/s" 30
	done
	wait_for_waiters "$D/s" 5
	local t0
	t0=$(now)
	run --separate-stderr sem_relax "$D/s"
	assert_success
	assert_silent
	local rc end
	for i in 1 2 3 4 5; do
		await "$D/w$i" 5
		read -r rc _ end <"$D/w$i"
		assert_equal "$rc" 0
		assert_elapsed "$t0" "$end" 0 1
		assert_waiter_silent "$D/w$i"
	done
	assert_equal "$(waiters "$D/s")" 0
	run sem_peek "$D/s"
	assert_output 0
}

@test "after sem_relax a later waiter still blocks" {
	sem_init "$D/s" 0
	bg_wait "$D/w1" "$D/s" 30
	bg_wait "$D/w2" "$D/s" 30
	wait_for_waiters "$D/s" 2
	sem_relax "$D/s"
	await "$D/w1"
	await "$D/w2"
	# Nothing was left over for a newcomer.
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" 0.3
	t1=$(now)
	assert_failure 1
	assert_elapsed "$t0" "$t1" 0.25 2
	bg_wait "$D/w3" "$D/s" 30
	wait_for_waiters "$D/s" 1
	sleep 0.2
	assert [ ! -e "$D/w3" ]
	sem_post "$D/s"
	await "$D/w3"
	local rc rest
	read -r rc rest <"$D/w3"
	assert_equal "$rc" 0
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_relax with nobody waiting returns 0, silent, and leaves the value unchanged" {
	local v
	for v in 0 1 3; do
		sem_init "$D/s$v" "$v"
		run --separate-stderr sem_relax "$D/s$v"
		assert_success
		assert_silent
		run sem_peek "$D/s$v"
		assert_output "$v"
	done
	# A relax with nobody waiting doesn't make a later waiter's count either.
	run --separate-stderr sem_trywait "$D/s0"
	assert_failure 1
}

@test "sem_relax on a missing or stale name returns 1, silent" {
	run --separate-stderr sem_relax "$D/missing"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/missing" ]
	sem_init "$D/s" 0
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_relax "$D/s"
	assert_failure 1
	assert_silent
	echo "not a semaphore" >"$D/file"
	run --separate-stderr sem_relax "$D/file"
	assert_failure 1
	assert_silent
	assert_equal "$(cat "$D/file")" "not a semaphore"
}

@test "with SEM_VERBOSE=1 a failing sem_relax prints one line naming the reason" {
	export SEM_VERBOSE=1
	run --separate-stderr sem_relax "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *"$D/missing"* ]] || fail "the reason does not name the semaphore: $stderr"
	# A successful relax stays silent.
	sem_init "$D/s" 0
	run --separate-stderr sem_relax "$D/s"
	assert_success
	assert_silent
}

@test "sem_relax with the wrong number of arguments returns 1, silent (usage with SEM_VERBOSE=1)" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 30
	wait_for_waiters "$D/s" 1
	run --separate-stderr sem_relax
	assert_failure 1
	assert_silent
	run --separate-stderr sem_relax "$D/s" "$D/s"
	assert_failure 1
	assert_silent
	SEM_VERBOSE=1 run --separate-stderr sem_relax "$D/s" extra
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(waiters "$D/s")" 1
	assert [ ! -e "$D/w" ]
	sem_post "$D/s"
	await "$D/w"
}

@test "sem_relax without permission returns 1 and releases nobody" {
	reachable_by_nobody
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 30
	wait_for_waiters "$D/s" 1
	run --separate-stderr as_nobody_sem sem_relax "$D/s"
	assert_failure 1
	assert_silent
	sleep 0.1
	assert_equal "$(waiters "$D/s")" 1
	assert [ ! -e "$D/w" ]
	sem_relax "$D/s"
	await "$D/w"
}

@test "semctl-helper relax: 0 silent; 3 and one line for a missing name" {
	"$HELPER" init "$D/s" 0
	bg_wait "$D/w" "$D/s" 30
	wait_for_waiters "$D/s" 1
	run --separate-stderr "$HELPER" relax "$D/s"
	assert_success
	assert_silent
	await "$D/w"
	run --separate-stderr "$HELPER" relax "$D/missing"
	assert_failure 3
	assert_one_line_stderr
}

@test "sem_relax works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 0
		sem_relax "$1/s"
		rc=0
		sem_relax "$1/missing" || rc=$?
		echo "missing=$rc"
		echo "value=$(sem_peek "$1/s")"
		sem_destroy "$1/s"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'missing=1\nvalue=0\ndone'
}
