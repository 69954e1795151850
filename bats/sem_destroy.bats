#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_destroy NAME: removes the semaphore (its file and its kernel set), but only if the
# caller's uid owns it. Returns 0, or 1 with one line on stderr. Processes blocked in
# sem_wait on it return 1 promptly.

load test_helper

@test "sem_destroy removes the file and the kernel set, silent" {
	sem_init "$D/s" 1
	local id
	id=$(set_id "$D/s")
	assert_set_exists "$id"
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_silent
	assert [ ! -e "$D/s" ]
	refute_set_exists "$id"
	run ipcs -s -i "$id"
	assert_output --partial "not found"
	# Nothing else was left in the directory either (no temporary or lock file).
	run ls -A "$D"
	assert_output ""
}

@test "after sem_destroy the name is gone for every operation and can be made again" {
	sem_init "$D/s" 1
	sem_destroy "$D/s"
	run --separate-stderr sem_peek "$D/s"
	assert_failure 1
	run --separate-stderr sem_post "$D/s"
	assert_failure 1
	run --separate-stderr sem_trywait "$D/s"
	assert_failure 1
	run --separate-stderr sem_init "$D/s" 2
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 2
}

@test "sem_destroy on a relative NAME removes it under \$HOME" {
	sem_init "$HOME/rel" 1
	run --separate-stderr sem_destroy rel
	assert_success
	assert_silent
	assert [ ! -e "$HOME/rel" ]
}

@test "sem_destroy on a missing name returns 1 with one line on stderr" {
	run --separate-stderr sem_destroy "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_destroy "$D/nodir/missing"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_destroy on an empty name or one ending in / returns 1 with one line" {
	mkdir "$D/dir"
	local name
	for name in "" "$D/dir/" "$D/missing/" "/"; do
		run --separate-stderr sem_destroy "$name"
		assert_failure 1
		assert_one_line_stderr
	done
	assert [ -d "$D/dir" ]
}

@test "sem_destroy twice: the second returns 1 with one line" {
	sem_init "$D/s" 1
	sem_destroy "$D/s"
	run --separate-stderr sem_destroy "$D/s"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_destroy on a stale name (its kernel set removed) returns 0 and removes the file" {
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_silent
	assert [ ! -e "$D/s" ]
}

@test "sem_destroy on a file that is not a record returns 1 with one line and leaves it" {
	echo "not a semaphore" >"$D/file"
	run --separate-stderr sem_destroy "$D/file"
	assert_failure 1
	assert_one_line_stderr
	assert [ -f "$D/file" ]
	assert_equal "$(cat "$D/file")" "not a semaphore"
	mkdir "$D/dir"
	run --separate-stderr sem_destroy "$D/dir"
	assert_failure 1
	assert_one_line_stderr
	assert [ -d "$D/dir" ]
}

@test "sem_destroy makes all blocked waiters return 1 promptly" {
	sem_init "$D/s" 0
	local id
	id=$(set_id "$D/s")
	bg_wait "$D/w1" "$D/s"
	bg_wait "$D/w2" "$D/s" -1
	bg_wait "$D/w3" "$D/s" 30
	wait_for_waiters "$D/s" 3
	local t0
	t0=$(now)
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_silent
	local w rc start end
	for w in w1 w2 w3; do
		await "$D/$w"
		# shellcheck disable=SC2034 # start (the waiter's own start time) is not checked here
		read -r rc start end <"$D/$w"
		assert_equal "$rc" 1
		assert_elapsed "$t0" "$end" 0 1
		assert_equal "$(cat "$D/$w.stdout" "$D/$w.stderr")" ""
	done
	assert [ ! -e "$D/s" ]
	refute_set_exists "$id"
}

@test "sem_destroy by a uid that doesn't own the semaphore returns 1 with one line" {
	reachable_by_nobody
	# Mode 0666: the other uid may use the set, and may read the file, but not remove it.
	sem_init "$D/s" 1 0666
	local id
	id=$(set_id "$D/s")
	run --separate-stderr as_nobody_sem sem_peek "$D/s"
	assert_success
	assert_output 1
	run --separate-stderr as_nobody_sem sem_destroy "$D/s"
	assert_failure 1
	assert_one_line_stderr
	assert [ -f "$D/s" ]
	assert_set_exists "$id"
	# The semaphore still works, for its owner and for the other uid.
	run --separate-stderr sem_post "$D/s"
	assert_success
	run --separate-stderr as_nobody_sem sem_trywait "$D/s"
	assert_success
	run sem_peek "$D/s"
	assert_output 1
}

@test "sem_destroy by a uid that can write the directory but doesn't own the semaphore fails" {
	reachable_by_nobody
	# A sticky world-writable directory, like /tmp: the other uid can create and unlink its
	# own files there, but the owner check is about the semaphore, not the directory.
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1 0666
	run --separate-stderr as_nobody_sem sem_destroy "$D/pub/s"
	assert_failure 1
	assert_one_line_stderr
	assert [ -f "$D/pub/s" ]
	run sem_peek "$D/pub/s"
	assert_output 1
}

@test "root's sem_destroy of a semaphore another uid owns is refused: the owner is a uid" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	run --separate-stderr as_nobody_sem sem_init "$D/pub/s" 1 0666
	assert_success
	assert_silent
	local id
	id=$(set_id "$D/pub/s")
	run --separate-stderr sem_destroy "$D/pub/s"
	assert_failure 1
	assert_one_line_stderr
	assert [ -f "$D/pub/s" ]
	assert_set_exists "$id"
	run --separate-stderr as_nobody_sem sem_peek "$D/pub/s"
	assert_success
	assert_output 1
	# Its owner can.
	run --separate-stderr as_nobody_sem sem_destroy "$D/pub/s"
	assert_success
	assert_silent
	assert [ ! -e "$D/pub/s" ]
	refute_set_exists "$id"
}

@test "sem_destroy with the wrong number of arguments returns 1 with one line" {
	sem_init "$D/s" 1
	run --separate-stderr sem_destroy
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_destroy "$D/s" "$D/s"
	assert_failure 1
	assert_one_line_stderr
	assert [ -f "$D/s" ]
}

@test "sem_destroy works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 1
		sem_destroy "$1/s"
		rc=0
		sem_destroy "$1/s" 2>/dev/null || rc=$?
		echo "again=$rc"
		[[ -e $1/s ]] || echo gone
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'again=1\ngone\ndone'
}
