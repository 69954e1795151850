#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_wait NAME [TIMEOUT], the contract every kind keeps: takes a count, sleeping until
# one is posted; TIMEOUT in seconds (fractions allowed; omitted or negative: no limit; 0:
# don't wait). Returns 0 once it took a count, 1 on timeout or any error (also when NAME
# is destroyed meanwhile). Silent on both streams. Many waiters and posters at once never
# lose or invent a count, and never have more than VALUE inside.

load ../test_helper
load kind

@test "sem_wait takes a count when one is there: 0, silent, counter decremented" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	run --separate-stderr sem_wait "$s"
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 1
	run --separate-stderr sem_wait "$s" 5
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 0
}

@test "sem_wait with TIMEOUT 1 returns 1 after about 1 s, silent, taking nothing" {
	local s t0 t1
	s=$(sem_name s)
	sem_init "$s" 0
	t0=$(now)
	run --separate-stderr sem_wait "$s" 1
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.9 2.5
	run sem_peek "$s"
	assert_output 0
}

@test "sem_wait with TIMEOUT 0.2 or .3 returns 1 after about that long" {
	local s t0 t1
	s=$(sem_name s)
	sem_init "$s" 0
	t0=$(now)
	run --separate-stderr sem_wait "$s" 0.2
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.15 1.5
	t0=$(now)
	run --separate-stderr sem_wait "$s" .3
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.25 1.5
}

@test "sem_wait with TIMEOUT 0 doesn't wait, like sem_trywait" {
	local s t0 t1
	s=$(sem_name s)
	sem_init "$s" 0
	t0=$(now)
	run --separate-stderr sem_wait "$s" 0
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	sem_post "$s"
	run --separate-stderr sem_wait "$s" 0
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 0
}

@test "sem_wait returns 0 as soon as a count is posted within TIMEOUT" {
	local s t0 rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w" "$s" 10
	wait_for_blocked "$s" 1
	t0=$(now)
	sem_post "$s"
	await "$D/w"
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"
	run sem_peek "$s"
	assert_output 0
}

@test "sem_wait with no TIMEOUT or a negative one waits until a count is posted" {
	local s rc1 rc2 rc3 rest
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w1" "$s"
	bg_wait "$D/w2" "$s" -1
	bg_wait "$D/w3" "$s" -0.5
	wait_for_blocked "$s" 3
	# Still blocked past any reading of -0.5 as a duration.
	sleep 0.6
	assert [ ! -e "$D/w1" ]
	assert [ ! -e "$D/w2" ]
	assert [ ! -e "$D/w3" ]
	sem_post "$s" 3
	await "$D/w1"
	await "$D/w2"
	await "$D/w3"
	read -r rc1 rest <"$D/w1"
	read -r rc2 rest <"$D/w2"
	read -r rc3 rest <"$D/w3"
	assert_equal "$rc1 $rc2 $rc3" "0 0 0"
	assert_waiter_silent "$D/w1"
	assert_waiter_silent "$D/w2"
	assert_waiter_silent "$D/w3"
	run sem_peek "$s"
	assert_output 0
}

@test "sem_wait with a malformed TIMEOUT returns 1 at once, silent, taking nothing" {
	local s t t0 t1
	s=$(sem_name s)
	sem_init "$s" 1
	for t in abc nan inf -inf 1e3 --1 '' ' 1' '1 ' 1s 0x10 . -. 1.. '1,5'; do
		t0=$(now)
		run --separate-stderr sem_wait "$s" "$t"
		t1=$(now)
		assert_failure 1
		assert_silent
		assert_elapsed "$t0" "$t1" 0 0.5
	done
	run sem_peek "$s"
	assert_output 1
}

@test "sem_wait on a missing or empty name returns 1 at once, silent" {
	local m t0 t1
	m=$(sem_name missing)
	t0=$(now)
	run --separate-stderr sem_wait "$m"
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	run --separate-stderr sem_wait "$m" 1
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait ""
	assert_failure 1
	assert_silent
	run --separate-stderr sem_peek "$m"
	assert_failure 1
}

@test "with SEM_VERBOSE=1 a failing sem_wait prints exactly one line on stderr" {
	local s
	s=$(sem_name s)
	sem_init "$s" 0
	export SEM_VERBOSE=1
	run --separate-stderr sem_wait "$(sem_name missing)"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_wait "$s" 0.1
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_wait "$s" abc
	assert_failure 1
	assert_one_line_stderr
	sem_post "$s"
	run --separate-stderr sem_wait "$s" 1
	assert_success
	assert_silent
}

@test "destroying the semaphore makes a blocked sem_wait return 1 promptly, silent" {
	local s t0 rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w" "$s"
	wait_for_blocked "$s" 1
	t0=$(now)
	sem_destroy "$s"
	await "$D/w"
	read -r rc start end <"$D/w"
	assert_equal "$rc" 1
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"
}

@test "a blocked sem_wait whose helper gets SIGTERM returns 1 and takes no count" {
	use_helper # the helper's own process (bats/builtin.bats: signals to the shell)
	local s job h rc rest
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w" "$s"
	job=$!
	wait_for_blocked "$s" 1
	h=$(helper_of "$job")
	kill -TERM "$h"
	await "$D/w"
	read -r rc rest <"$D/w"
	assert_equal "$rc" 1
	assert_waiter_silent "$D/w"
	run sem_peek "$s"
	assert_output 0
	# The next post is not swallowed by a waiter that lingers on.
	sem_post "$s"
	sleep 0.2
	run sem_peek "$s"
	assert_output 1
}

@test "sem_wait stays silent when its helper is killed by a signal (no job-status line)" {
	use_helper # the helper's own process (bats/builtin.bats: signals to the shell)
	local s sig job helper rc rest
	for sig in HUP KILL; do
		s=$(sem_name "s$sig")
		sem_init "$s" 0
		bg_wait "$D/w$sig" "$s" 10
		job=$!
		helper=$(helper_of "$job")
		kill "-$sig" "$helper"
		await "$D/w$sig"
		read -r rc rest <"$D/w$sig"
		assert_equal "$rc" 1
		assert_waiter_silent "$D/w$sig"
	done
}

@test "SIGSTOP and SIGCONT don't cost a waiter the count posted meanwhile" {
	local s job h rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_wait "$D/w" "$s" 5
	job=$!
	wait_for_blocked "$s" 1
	h=$(waiter_of "$job" "$s")
	kill -STOP "$h"
	sleep 0.1
	sem_post "$s"
	sleep 0.1
	kill -CONT "$h"
	await "$D/w"
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$start" "$end" 0 4
	run sem_peek "$s"
	assert_output 0
}

@test "mutual exclusion: VALUE 2, 4 processes x 25 rounds, never more than 2 inside, none lost" {
	local s p
	s=$(sem_name s)
	sem_init "$s" 2
	mkdir "$D/inside"
	for p in 1 2 3 4; do
		# Inside, each leaves a marker and counts the markers: a count can only
		# understate who is inside, never overstate it.
		bg bash -c 'source "$1"
			for ((r = 0; r < 25; r++)); do
				sem_wait "$2" 30 || { echo "wait failed" >>"$3/errors"; exit 1; }
				: >"$3/inside/$4"
				n=$(find "$3/inside" -type f | wc -l)
				echo "$n" >>"$3/trace"
				rm "$3/inside/$4"
				sem_post "$2" || echo "post failed" >>"$3/errors"
			done' _ "$REPO_ROOT/sh/sem.sh" "$s" "$D" "$p"
	done
	wait
	[[ ! -e $D/errors ]] || fail "$(sort "$D/errors" | uniq -c)"
	assert_equal "$(wc -l <"$D/trace")" 100
	assert_equal "$(sort -n "$D/trace" | tail -1 | awk '{ print ($1 <= 2) }')" 1
	run sem_peek "$s"
	assert_output 2
}

@test "no lost or invented counts: 6 posters x 20 and 6 waiters x 20 at once from 0" {
	local s p
	s=$(sem_name s)
	sem_init "$s" 0
	for p in 1 2 3 4 5 6; do
		bg bash -c 'source "$1"
			for ((r = 0; r < 20; r++)); do
				sem_wait "$2" 30 && echo ok || echo "wait failed: $?"
			done >"$3/waiter.$4"' _ "$REPO_ROOT/sh/sem.sh" "$s" "$D" "$p"
		bg bash -c 'source "$1"
			for ((r = 0; r < 20; r++)); do
				sem_post "$2" && echo ok || echo "post failed: $?"
			done >"$3/poster.$4"' _ "$REPO_ROOT/sh/sem.sh" "$s" "$D" "$p"
	done
	wait
	assert_equal "$(cat "$D"/waiter.* | grep -cx ok)" 120
	assert_equal "$(cat "$D"/poster.* | grep -cx ok)" 120
	run sem_peek "$s"
	assert_output 0
	# Nobody invented a count: with the value 0, a try takes nothing.
	run sem_trywait "$s"
	assert_failure 1
}

@test "sem_wait with the wrong number of arguments returns 1, silent, taking nothing" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_wait
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait "$s" 1 extra
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output 1
}

@test "sem_wait works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 1
		sem_wait "$1"
		rc=0
		sem_wait "$1" 0.1 || rc=$?
		echo "timed out=$rc"
		rc=0
		sem_wait "$1" bogus || rc=$?
		echo "bad timeout=$rc"
		sem_post "$1"
		if sem_wait "$1" 1; then echo took; fi
		echo "value=$(sem_peek "$1")"
		sem_destroy "$1"
		echo done
	' _ "$(sem_name s)"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'timed out=1\nbad timeout=1\ntook\nvalue=0\ndone'
}
