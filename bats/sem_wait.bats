#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_wait NAME [TIMEOUT]: decrements, sleeping in the kernel until it can. TIMEOUT in
# seconds, fractional allowed; omitted or negative waits indefinitely; 0 doesn't wait.
# Returns 0 once it has decremented, 1 on timeout or any error. Silent on both streams.

load test_helper

# cpu_ticks PID: user plus system time of PID, in clock ticks.
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	# Fields after the command name, which is in parentheses and may hold spaces.
	stat=${stat##*) }
	local -a f
	read -r -a f <<<"$stat"
	# utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
	echo $((f[11] + f[12]))
}

# switches PID: how often PID has been scheduled out (voluntary and not).
switches() {
	awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"
}

@test "sem_wait takes a count when one is there: 0, silent, counter decremented" {
	sem_init "$D/s" 2
	run --separate-stderr sem_wait "$D/s"
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 1
	run --separate-stderr sem_wait "$D/s" 5
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait on a relative NAME waits under \$HOME" {
	sem_init "$HOME/rel" 1
	run --separate-stderr sem_wait rel 1
	assert_success
	assert_silent
	run sem_peek "$HOME/rel"
	assert_output 0
}

@test "sem_wait with TIMEOUT 1 returns 1 after about 1 s, silent, taking nothing" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" 1
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.9 2.5
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait with TIMEOUT 0.2 returns 1 after about 0.2 s" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" 0.2
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.15 1.5
}

@test "sem_wait accepts a fractional TIMEOUT without a leading digit (.5)" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" .5
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.4 2
	sem_post "$D/s"
	run --separate-stderr sem_wait "$D/s" 0.25
	assert_success
	assert_silent
}

@test "sem_wait accepts a TIMEOUT with a trailing dot (1.)" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" 1.
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0.9 2.5
}

@test "sem_wait with TIMEOUT 0 doesn't wait, like sem_trywait" {
	sem_init "$D/s" 0
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/s" 0
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	sem_post "$D/s"
	run --separate-stderr sem_wait "$D/s" 0
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait returns 0 as soon as a count is posted within TIMEOUT" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 10
	wait_for_waiters "$D/s" 1
	local t0
	t0=$(now)
	sem_post "$D/s"
	await "$D/w"
	local rc start end
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait with no TIMEOUT waits until a count is posted" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s"
	wait_for_waiters "$D/s" 1
	# Blocked, not returned: the kernel counts it as a waiter and it has written nothing.
	sleep 0.2
	assert [ ! -e "$D/w" ]
	assert_equal "$(waiters "$D/s")" 1
	sem_post "$D/s"
	await "$D/w"
	local rc rest
	read -r rc rest <"$D/w"
	assert_equal "$rc" 0
	assert_waiter_silent "$D/w"
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait with a negative TIMEOUT waits indefinitely" {
	sem_init "$D/s" 0
	bg_wait "$D/w1" "$D/s" -1
	bg_wait "$D/w2" "$D/s" -0.5
	wait_for_waiters "$D/s" 2
	# Still blocked well past any reading of -1 or -0.5 as a duration.
	sleep 1.1
	assert [ ! -e "$D/w1" ]
	assert [ ! -e "$D/w2" ]
	assert_equal "$(waiters "$D/s")" 2
	sem_post "$D/s"
	sem_post "$D/s"
	await "$D/w1"
	await "$D/w2"
	local rc1 rc2 rest
	read -r rc1 rest <"$D/w1"
	read -r rc2 rest <"$D/w2"
	assert_equal "$rc1 $rc2" "0 0"
	assert_waiter_silent "$D/w1"
	assert_waiter_silent "$D/w2"
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait with a malformed TIMEOUT returns 1 at once, silent, taking nothing" {
	sem_init "$D/s" 1
	local t timeouts=(abc nan inf -inf 1e3 --1 '' ' 1' '1 ' 1s 0x10 . -. 1.. '1,5')
	for t in "${timeouts[@]}"; do
		local t0 t1
		t0=$(now)
		run --separate-stderr sem_wait "$D/s" "$t"
		t1=$(now)
		assert_failure 1
		assert_silent
		assert_elapsed "$t0" "$t1" 0 0.5
		run sem_peek "$D/s"
		assert_output 1
	done
}

@test "sem_wait on a missing name returns 1 at once, silent" {
	local t0 t1
	t0=$(now)
	run --separate-stderr sem_wait "$D/missing"
	t1=$(now)
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$t1" 0 0.5
	run --separate-stderr sem_wait "$D/missing" 1
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait "$D/nodir/x"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait ""
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait "$D/"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/missing" ]
}

@test "sem_wait on a stale name or a file that is not a record returns 1, silent" {
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_wait "$D/s"
	assert_failure 1
	assert_silent
	echo "not a semaphore" >"$D/file"
	run --separate-stderr sem_wait "$D/file" 1
	assert_failure 1
	assert_silent
	assert_equal "$(cat "$D/file")" "not a semaphore"
}

@test "with SEM_VERBOSE=1 a failing sem_wait prints exactly one line on stderr" {
	sem_init "$D/s" 0
	export SEM_VERBOSE=1
	run --separate-stderr sem_wait "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_wait "$D/s" 0.1
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_wait "$D/s" abc
	assert_failure 1
	assert_one_line_stderr
	sem_post "$D/s"
	run --separate-stderr sem_wait "$D/s" 1
	assert_success
	assert_silent
}

@test "destroying the semaphore makes a blocked sem_wait return 1 promptly, silent" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s"
	wait_for_waiters "$D/s" 1
	local t0
	t0=$(now)
	sem_destroy "$D/s"
	await "$D/w"
	local rc start end
	read -r rc start end <"$D/w"
	assert_equal "$rc" 1
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"
}

@test "a blocked sem_wait sleeps in the kernel: no CPU and no wake-ups while it waits" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	bg_wait "$D/w1" "$D/s"
	local job1=$!
	bg_wait "$D/w2" "$D/s" 30
	local job2=$!
	wait_for_waiters "$D/s" 2
	local h1 h2
	h1=$(helper_of "$job1")
	h2=$(helper_of "$job2")
	local c1 c2 s1 s2
	c1=$(cpu_ticks "$h1") c2=$(cpu_ticks "$h2")
	s1=$(switches "$h1") s2=$(switches "$h2")
	sleep 1
	# A poller, even one waking once a second to check its parent, would be scheduled
	# in and out; a semtimedop sleeper isn't.
	assert_equal "$(switches "$h1")" "$s1"
	assert_equal "$(switches "$h2")" "$s2"
	local d1 d2
	d1=$(($(cpu_ticks "$h1") - c1))
	d2=$(($(cpu_ticks "$h2") - c2))
	((d1 <= 1 && d2 <= 1)) || fail "the waiters used CPU: $d1 and $d2 ticks in 1 s"
	local wchan
	wchan=$(cat "/proc/$h1/wchan" 2>/dev/null) || wchan=''
	if [[ -n $wchan && $wchan != 0 ]]; then
		assert_equal "$wchan" "$(cat "/proc/$h2/wchan")"
		[[ $wchan == *sem* ]] || fail "the waiter sleeps in $wchan, not in a semaphore wait"
	fi
	sem_post "$D/s"
	sem_post "$D/s"
	await "$D/w1"
	await "$D/w2"
}

@test "a blocked sem_wait killed by SIGTERM returns 1 and takes no count" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s"
	local job=$!
	wait_for_waiters "$D/s" 1
	local h
	h=$(helper_of "$job")
	kill -TERM "$h"
	await "$D/w"
	local rc rest
	read -r rc rest <"$D/w"
	assert_equal "$rc" 1
	assert_equal "$(waiters "$D/s")" 0
	run sem_peek "$D/s"
	assert_output 0
	# The next post is not swallowed by a waiter that lingers on.
	sem_post "$D/s"
	sleep 0.2
	run sem_peek "$D/s"
	assert_output 1
}

@test "a waiter stopped and continued within its 1 s TIMEOUT still returns after about 1 s" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 1
	local job=$!
	wait_for_waiters "$D/s" 1
	local h
	h=$(waiter_of "$job")
	kill -STOP "$h"
	sleep 0.3
	kill -CONT "$h"
	await "$D/w"
	local rc start end
	read -r rc start end <"$D/w"
	assert_equal "$rc" 1
	assert_elapsed "$start" "$end" 0.9 2.5
	assert_waiter_silent "$D/w"
	run sem_peek "$D/s"
	assert_output 0
}

@test "a waiter stopped past its 1 s TIMEOUT returns 1 as soon as it is continued" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 1
	local job=$!
	wait_for_waiters "$D/s" 1
	local h
	h=$(waiter_of "$job")
	kill -STOP "$h"
	sleep 1.5
	local t_cont
	t_cont=$(now)
	kill -CONT "$h"
	await "$D/w"
	local rc start end
	read -r rc start end <"$D/w"
	assert_equal "$rc" 1
	# The deadline passed while it was stopped: restarting the full second after the
	# EINTR that SIGCONT causes would return about 1 s after the CONT.
	assert_elapsed "$t_cont" "$end" 0 0.7
	assert_waiter_silent "$D/w"
	run sem_peek "$D/s"
	assert_output 0
}

@test "SIGSTOP and SIGCONT don't cost a waiter the count posted meanwhile" {
	sem_init "$D/s" 0
	bg_wait "$D/w" "$D/s" 5
	local job=$!
	wait_for_waiters "$D/s" 1
	local h
	h=$(waiter_of "$job")
	kill -STOP "$h"
	sleep 0.1
	kill -CONT "$h"
	wait_for_waiters "$D/s" 1
	sem_post "$D/s"
	await "$D/w"
	local rc start end
	read -r rc start end <"$D/w"
	assert_equal "$rc" 0
	assert_elapsed "$start" "$end" 0 4
	run sem_peek "$D/s"
	assert_output 0
}

@test "sem_wait with the wrong number of arguments returns 1, silent, taking nothing" {
	sem_init "$D/s" 1
	run --separate-stderr sem_wait
	assert_failure 1
	assert_silent
	run --separate-stderr sem_wait "$D/s" 1 extra
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 1
}

@test "sem_wait works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 1
		sem_wait "$1/s"
		rc=0
		sem_wait "$1/s" 0.1 || rc=$?
		echo "timed out=$rc"
		rc=0
		sem_wait "$1/s" bogus || rc=$?
		echo "bad timeout=$rc"
		sem_post "$1/s"
		if sem_wait "$1/s" 1; then echo took; fi
		echo "value=$(sem_peek "$1/s")"
		sem_destroy "$1/s"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'timed out=1\nbad timeout=1\ntook\nvalue=0\ndone'
}

@test "sem_wait stays silent when its helper is killed by a signal (no job-status line)" {
	use_helper # the helper's own process (bats/builtin.bats: signals to the shell)
	local sig
	for sig in HUP TERM USR1 KILL; do
		sem_init "$D/s$sig" 0
		bg_wait "$D/w$sig" "$D/s$sig" 10
		local job=$! helper
		helper=$(helper_of "$job")
		kill "-$sig" "$helper"
		await "$D/w$sig"
		local rc rest
		read -r rc rest <"$D/w$sig"
		assert_equal "$rc" 1
		assert_waiter_silent "$D/w$sig"
		sem_post "$D/s$sig"
		run sem_peek "$D/s$sig"
		assert_output 1
	done
}

# --- semctl-helper wait: -w/--timeout and -n N ---

@test "wait -w SECONDS and --timeout SECONDS bound the wait as TIMEOUT does: 1 after about 1 s" {
	"$HELPER" init "$D/s" 0
	local opt t0 t1
	for opt in -w --timeout; do
		t0=$(now)
		run --separate-stderr "$HELPER" wait "$D/s" "$opt" 1
		t1=$(now)
		assert_failure 1
		assert_one_line_stderr
		assert_elapsed "$t0" "$t1" 0.9 2.5
	done
	run --separate-stderr "$HELPER" wait --timeout=0 "$D/s"
	assert_failure 1
	"$HELPER" post "$D/s"
	run --separate-stderr "$HELPER" wait "$D/s" --timeout 1
	assert_success
	assert_silent
	run "$HELPER" peek "$D/s"
	assert_output 0
}

@test "wait with both TIMEOUT and --timeout is a usage error (2), one line, taking nothing" {
	"$HELPER" init "$D/s" 1
	run --separate-stderr "$HELPER" wait "$D/s" 1 --timeout 1
	assert_failure 2
	assert_equal "$output" ""
	assert_stderr_one_line
	run --separate-stderr "$HELPER" wait -w 1 "$D/s" 1
	assert_failure 2
	assert_stderr_one_line
	run "$HELPER" peek "$D/s"
	assert_output 1
}

@test "wait -n 2 takes 2 counts in one step; -n 2 with 1 there takes nothing" {
	"$HELPER" init "$D/s" 3
	run --separate-stderr "$HELPER" wait -n 2 "$D/s"
	assert_success
	assert_silent
	run "$HELPER" peek "$D/s"
	assert_output 1
	run --separate-stderr "$HELPER" wait "$D/s" --count 2 0
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr "$HELPER" wait -n 2 -w 0.2 "$D/s"
	assert_failure 1
	assert_one_line_stderr
	run "$HELPER" peek "$D/s"
	assert_output 1
}

@test "wait -n 3 wakes only when 3 are there, and takes all 3" {
	"$HELPER" init "$D/s" 4
	"$HELPER" wait -n 4 "$D/s" 0
	bg "$HELPER" wait -n 3 "$D/s" 30
	local pid=$!
	wait_for_waiters "$D/s" 1
	"$HELPER" post "$D/s"
	"$HELPER" post "$D/s"
	sleep 0.3
	# Two are there: the waiter still sleeps and has taken nothing.
	assert_equal "$(waiters "$D/s")" 1
	run "$HELPER" peek "$D/s"
	assert_output 2
	"$HELPER" post "$D/s"
	reap "$pid"
	assert_success
	run "$HELPER" peek "$D/s"
	assert_output 0
}

@test "wait -n 5 on a semaphore made with 4 fails at once: 5, one line naming the capacity" {
	"$HELPER" init "$D/s" 4
	local t0 t1
	t0=$(now)
	run --separate-stderr "$HELPER" wait -n 5 "$D/s"
	t1=$(now)
	assert_failure 5
	assert_equal "$output" ""
	assert_stderr_one_line
	assert_equal "$stderr" "semctl-helper: wait: $D/s: asks for 5 counts, but the semaphore holds at most 4 (its initial value)"
	assert_elapsed "$t0" "$t1" 0 1
	run "$HELPER" peek "$D/s"
	assert_output 4
	# Posted above its capacity, the value makes the take possible.
	"$HELPER" post "$D/s"
	run --separate-stderr "$HELPER" wait -n 5 "$D/s" 0
	assert_success
	assert_silent
	run "$HELPER" peek "$D/s"
	assert_output 0
}

@test "wait -n on a semaphore made with 0, or with an old record without cap, waits: nothing is refused" {
	"$HELPER" init "$D/gate" 0
	run --separate-stderr "$HELPER" wait -n 3 "$D/gate" 0.2
	assert_failure 1
	assert_one_line_stderr
	"$HELPER" init "$D/old" 2
	sed -i 's/ cap=[0-9]*$//' "$D/old"
	run "$HELPER" peek "$D/old"
	assert_output 2
	run --separate-stderr "$HELPER" wait -n 5 "$D/old" 0.2
	assert_failure 1
	assert_one_line_stderr
	"$HELPER" post "$D/old" 3
	run --separate-stderr "$HELPER" wait -n 5 "$D/old" 0
	assert_success
}

@test "wait -n with a bad N: 2 (5 above 32767), one line, taking nothing" {
	"$HELPER" init "$D/s" 1
	local n
	for n in 0 -1 +1 1.5 abc '' ' 1' 0x1; do
		run --separate-stderr "$HELPER" wait -n "$n" "$D/s" 0
		assert_failure 2
		assert_equal "$output" ""
		assert_stderr_one_line
	done
	run --separate-stderr "$HELPER" wait -n 32768 "$D/s" 0
	assert_failure 5
	assert_stderr_one_line
	run "$HELPER" peek "$D/s"
	assert_output 1
}
