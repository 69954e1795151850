#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# Races and signals (invariants 1, 2 and 5): atomic init, mutual exclusion, no lost or
# invented counts, and what signals may and may not do to a count.

load test_helper

# gate_open, racer, gate_release: a barrier. Each racer opens the FIFO (which succeeds at once, since
# we hold its write end), reports ready, and blocks reading; closing our end gives every
# racer EOF at the same moment.
gate_open() {
	mkfifo "$BATS_TEST_TMPDIR/gate"
	exec 7<>"$BATS_TEST_TMPDIR/gate"
}

# gate_release N: wait until N racers are ready, then let them all go.
gate_release() {
	local n=$1 i
	for ((i = 0; i < 1000; i++)); do
		(($(find "$BATS_TEST_TMPDIR/ready" -type f | wc -l) >= n)) && break
		sleep 0.01
	done
	exec 7>&-
}

# racer CMD...: wait at the gate, then run CMD (a child of the gated shell).
racer() {
	exec 7>&-
	{
		mktemp -p "$BATS_TEST_TMPDIR/ready" >/dev/null
		read -r _ || true
	} <"$BATS_TEST_TMPDIR/gate"
	"$@"
}

# alive PID: PID exists and is not a zombie (a dead orphan waits for its reaper).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

@test "atomic init: of 20 concurrent sem_inits exactly one wins, and its value stays" {
	mkdir "$BATS_TEST_TMPDIR/ready" "$D/rc"
	gate_open
	local i
	for i in $(seq 1 20); do
		bg racer bash -c 'source "$1"; sem_init "$2" "$3" 2>/dev/null; echo $? >"$4"' \
			_ "$REPO_ROOT/sh/sem.sh" "$D/s" "$i" "$D/rc/$i"
	done
	gate_release 20
	wait
	local winners=() rc
	for i in $(seq 1 20); do
		rc=$(cat "$D/rc/$i")
		case $rc in
		0) winners+=("$i") ;;
		1) ;;
		*) fail "sem_init $i returned $rc" ;;
		esac
	done
	assert_equal "${#winners[@]}" 1
	run sem_peek "$D/s"
	assert_success
	assert_output "${winners[0]}"
	# Only the winner's set exists; the teardown fails the test if a loser leaked one.
	assert_equal "$(comm -13 <(echo "$SETS_BEFORE") <(kernel_sets) | wc -l)" 1
}

@test "atomic init: 20 concurrent helper inits, exactly one 0 and nineteen 6" {
	mkdir "$BATS_TEST_TMPDIR/ready" "$D/rc"
	gate_open
	local i
	for i in $(seq 1 20); do
		bg racer bash -c '"$1" init "$2" "$3" 2>/dev/null; echo $? >"$4"' \
			_ "$HELPER" "$D/s" "$i" "$D/rc/$i"
	done
	gate_release 20
	wait
	assert_equal "$(cat "$D"/rc/* | sort | uniq -c | awk '{ print $2 "x" $1 }' | xargs)" '0x1 6x19'
}

@test "create on first use: 10 racing 'run --init 3' callers: exactly one creates, all run, value back to 3" {
	mkdir "$BATS_TEST_TMPDIR/ready" "$D/rc" "$D/seen"
	gate_open
	local i
	for i in $(seq 1 10); do
		# The program notes the set id the record names, and holds its count a moment.
		bg racer bash -c '"$1" run --init 3 "$2" -- sh -c '\''sed -n "s/.* id=\([0-9]*\) .*/\1/p" "$1" >"$2"; sleep 0.05'\'' _ "$2" "$3" 2>"$4.err"
			echo $? >"$4"' _ "$HELPER" "$D/s" "$D/seen/$i" "$D/rc/$i"
	done
	gate_release 10
	wait
	assert_equal "$(cat "$D"/rc/* | sort | uniq -c | awk '{ print $2 "x" $1 }' | xargs)" '0x10'
	assert_equal "$(cat "$D"/rc/*.err)" ""
	# One set was made, and every caller ran on it: the losers of the race opened it.
	assert_equal "$(comm -13 <(echo "$SETS_BEFORE") <(kernel_sets) | wc -l)" 1
	assert_equal "$(sort -u "$D"/seen/* | xargs)" "$(set_id "$D/s")"
	run sem_peek "$D/s"
	assert_output 3
}

@test "atomic init over a stale name: of 10 concurrent reclaimers exactly one wins" {
	"$HELPER" init "$D/s" 0
	ipcrm -s "$(set_id "$D/s")"
	mkdir "$BATS_TEST_TMPDIR/ready" "$D/rc"
	gate_open
	local i
	for i in $(seq 1 10); do
		bg racer bash -c '"$1" init "$2" "$3" 2>/dev/null; echo $? >"$4"' \
			_ "$HELPER" "$D/s" "$i" "$D/rc/$i"
	done
	gate_release 10
	wait
	local winner
	winner=$(grep -lx 0 "$D"/rc/*)
	assert_equal "$(wc -l <<<"$winner")" 1
	run sem_peek "$D/s"
	assert_output "${winner##*/}"
	assert_equal "$(comm -13 <(echo "$SETS_BEFORE") <(kernel_sets) | wc -l)" 1
}

@test "atomic destroy: of 10 concurrent sem_destroys exactly one returns 0" {
	sem_init "$D/s" 1
	mkdir "$BATS_TEST_TMPDIR/ready" "$D/rc"
	gate_open
	local i
	for i in $(seq 1 10); do
		bg racer bash -c 'source "$1"; sem_destroy "$2" 2>/dev/null; echo $? >"$3"' \
			_ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D/rc/$i"
	done
	gate_release 10
	wait
	assert_equal "$(cat "$D"/rc/* | sort | uniq -c | awk '{ print $2 "x" $1 }' | xargs)" '0x1 1x9'
	[[ ! -e $D/s ]]
}

@test "init and destroy racing on one name leave either a whole semaphore or nothing" {
	mkdir "$BATS_TEST_TMPDIR/ready"
	gate_open
	local p
	for p in 1 2 3 4; do
		bg racer bash -c 'source "$1"
			for ((r = 0; r < 25; r++)); do
				sem_init "$2" 3 2>/dev/null
				sem_destroy "$2" 2>/dev/null
			done; :' _ "$REPO_ROOT/sh/sem.sh" "$D/s"
	done
	gate_release 4
	wait
	if [[ -e $D/s ]]; then
		run sem_peek "$D/s"
		assert_output 3
		sem_destroy "$D/s"
	fi
	# The teardown fails the test if any set outlived its name.
}

@test "no half-made semaphore: peeks during init see nothing (1) or the complete value" {
	local p
	for p in 1 2 3 4; do
		bg bash -c 'source "$1"
			until [[ -e $3 ]]; do
				out=$(sem_peek "$2"); rc=$?
				echo "$rc:$out"
			done >"$4"' _ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D/stop" "$D/log.$p"
	done
	# Let each peeker run before the first init.
	for p in 1 2 3 4; do
		until [[ -s $D/log.$p ]]; do sleep 0.01; done
	done
	local v
	for v in 11 12 13 14 15 16 17 18 19 20; do
		sem_init "$D/s" "$v"
		sem_destroy "$D/s"
	done
	sem_init "$D/s" 21
	local i
	for ((i = 0; i < 500; i++)); do
		grep -qx '0:21' "$D"/log.* && break
		sleep 0.01
	done
	touch "$D/stop"
	wait
	local seen
	seen=$(cat "$D"/log.* | sort | uniq -c)
	echo "$seen"
	# Every line is "1:" (nothing there) or "0:V" for a value some init gave.
	run grep -Evx '1:|0:(1[1-9]|2[01])' "$D"/log.*
	assert_failure 1
	# And the peekers did see both states.
	grep -qx '1:' "$D"/log.*
	grep -qx '0:21' "$D"/log.*
}

@test "no half-made semaphore: post, trywait and wait during init see nothing or the whole" {
	# The helper's own exit codes tell "nothing there" (3) from every other failure.
	bg bash -c 'until [[ -e $3 ]]; do
			"$1" post "$2"; echo "post $?"
			"$1" trywait "$2"; echo "trywait $?"
			"$1" wait "$2" 0.01; echo "wait $?"
			"$1" peek "$2"; echo "peek $?"
		done >"$4" 2>"$4.err"' _ "$HELPER" "$D/s" "$D/stop" "$D/log"
	until [[ -s $D/log ]]; do sleep 0.01; done
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sem_init "$D/s" 0
		sleep 0.02
		sem_destroy "$D/s"
	done
	touch "$D/stop"
	wait
	# post: 0 or 3; trywait and wait: 0, 1 or 3; peek prints a value of 0..20 or nothing.
	run grep -Evx 'post [03]|(trywait|wait) [013]|peek [03]|[0-9]|1[0-9]|20' "$D/log"
	assert_failure 1
	run grep -c panicked "$D/log.err"
	assert_output 0
}

@test "mutual exclusion: value 1, 4 processes x 50 rounds, never two inside, final value 1" {
	sem_init "$D/s" 1
	local p
	for p in 1 2 3 4; do
		bg bash -c 'source "$1"
			for ((r = 0; r < 50; r++)); do
				sem_wait "$2" 30 || { echo "wait failed" >>"$3/errors"; exit 1; }
				mkdir "$3/inside" 2>/dev/null || echo "overlap" >>"$3/errors"
				echo "$4" >>"$3/trace"
				rmdir "$3/inside" 2>/dev/null
				sem_post "$2" || echo "post failed" >>"$3/errors"
			done' _ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D" "$p"
	done
	wait
	[[ ! -e $D/errors ]] || fail "$(sort "$D/errors" | uniq -c)"
	assert_equal "$(wc -l <"$D/trace")" 200
	run sem_peek "$D/s"
	assert_output 1
}

@test "no lost or invented counts: 8 posters x 25 and 8 waiters x 25 at once from 0" {
	sem_init "$D/s" 0
	local p
	for p in 1 2 3 4 5 6 7 8; do
		bg bash -c 'source "$1"
			for ((r = 0; r < 25; r++)); do
				sem_wait "$2" 30 && echo ok || echo "wait failed: $?"
			done >"$3/waiter.$4"' _ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D" "$p"
		bg bash -c 'source "$1"
			for ((r = 0; r < 25; r++)); do
				sem_post "$2" && echo ok || echo "post failed: $?"
			done >"$3/poster.$4"' _ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D" "$p"
	done
	wait
	assert_equal "$(cat "$D"/waiter.* | grep -cx ok)" 200
	assert_equal "$(cat "$D"/poster.* | grep -cx ok)" 200
	run sem_peek "$D/s"
	assert_output 0
	assert_equal "$(waiters "$D/s")" 0
}

@test "a blocked sem_wait ended by SIGTERM takes no count" {
	sem_init "$D/s" 0
	bg "$HELPER" wait "$D/s"
	local pid=$!
	wait_for_waiters "$D/s" 1
	kill -TERM "$pid"
	reap "$pid"
	assert_equal "$status" 143
	assert_equal "$(waiters "$D/s")" 0
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 1
}

@test "a blocked sem_wait ended by SIGINT, SIGHUP or SIGQUIT takes no count" {
	sem_init "$D/s" 0
	local sig pid
	for sig in INT HUP QUIT USR1; do
		# A background job starts with SIGINT and SIGQUIT ignored; undo that, as a
		# foreground job would have them.
		bg env --default-signal=INT,QUIT "$HELPER" wait "$D/s"
		pid=$!
		wait_for_waiters "$D/s" 1
		kill -"$sig" "$pid"
		reap "$pid"
		assert_equal "$status" "$((128 + $(kill -l "$sig")))"
	done
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 1
}

@test "the calling shell's sem_wait killed by SIGTERM returns no count" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	bg bash -c 'source "$1"; sem_wait "$2"; echo "returned $?" >"$3"' \
		_ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D/result"
	local shell=$! helper
	wait_for_waiters "$D/s" 1
	helper=$(helper_of "$shell")
	kill -TERM "$helper"
	wait "$shell"
	assert_equal "$(cat "$D/result")" 'returned 1'
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 1
}

@test "a background sem_wait (SIGINT ignored) survives SIGINT and still takes its count" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	# A non-interactive shell starts its background jobs with SIGINT ignored.
	bg bash -c 'source "$1"; sem_wait "$2" & wait $!; echo "returned $?" >"$3"' \
		_ "$REPO_ROOT/sh/sem.sh" "$D/s" "$D/result"
	local shell=$! helper
	wait_for_waiters "$D/s" 1
	helper=$(pgrep -f "semctl-helper wait -- $D/s")
	[[ $(awk '/^SigIgn/ { print $2 }' "/proc/$helper/status") =~ [2367aAbBeEfF]$ ]] ||
		fail "SIGINT is not ignored in the background helper"
	kill -INT "$helper"
	sleep 0.2
	kill -0 "$helper" || fail "SIGINT killed the background helper"
	assert_equal "$(waiters "$D/s")" 1
	sem_post "$D/s"
	wait "$shell"
	assert_equal "$(cat "$D/result")" 'returned 0'
	run sem_peek "$D/s"
	assert_output 0
}

@test "the calling shell killed with -9: the waiting helper is gone within 1 s, takes nothing" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	bg bash -c 'source "$1"; sem_wait "$2"; echo "returned $?"' _ "$REPO_ROOT/sh/sem.sh" "$D/s"
	local shell=$! helper i
	wait_for_waiters "$D/s" 1
	helper=$(helper_of "$shell")
	kill -9 "$shell"
	for ((i = 0; i < 100; i++)); do
		alive "$helper" || break
		sleep 0.01
	done
	! alive "$helper" || fail "the helper $helper outlived its shell by 1 s"
	assert_equal "$(waiters "$D/s")" 0
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 1
}

@test "the calling shell killed with SIGTERM alone (a CI cancel): the helper does not linger" {
	use_helper # the helper's own process (bats/builtin.bats: the shell's wait)
	sem_init "$D/s" 0
	bg bash -c 'source "$1"; sem_wait "$2"; echo "returned $?"' _ "$REPO_ROOT/sh/sem.sh" "$D/s"
	local shell=$! helper i
	wait_for_waiters "$D/s" 1
	helper=$(helper_of "$shell")
	kill -TERM "$shell"
	for ((i = 0; i < 100; i++)); do
		alive "$helper" || break
		sleep 0.01
	done
	! alive "$helper" || fail "the helper $helper outlived its shell by 1 s"
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 1
}

@test "SIGSTOP/SIGCONT during a timed wait keeps its length" {
	sem_init "$D/s" 0
	local start end pid
	start=$(now)
	bg "$HELPER" wait "$D/s" 1
	pid=$!
	wait_for_waiters "$D/s" 1
	sleep 0.25
	kill -STOP "$pid"
	sleep 0.5
	kill -CONT "$pid"
	reap "$pid"
	end=$(now)
	assert_equal "$status" 1
	assert_elapsed "$start" "$end" 0.9 2.5
	run sem_peek "$D/s"
	assert_output 0
}

@test "SIGSTOP/SIGCONT during an untimed wait: it still takes the next post" {
	sem_init "$D/s" 0
	bg "$HELPER" wait "$D/s"
	local pid=$!
	wait_for_waiters "$D/s" 1
	kill -STOP "$pid"
	sleep 0.1
	kill -CONT "$pid"
	wait_for_waiters "$D/s" 1
	sem_post "$D/s"
	reap "$pid"
	assert_success
	run sem_peek "$D/s"
	assert_output 0
}

@test "a signal after the count was taken doesn't lose it: 50 post + SIGTERM races" {
	sem_init "$D/s" 0
	local i pid taken=0 killed=0
	for ((i = 0; i < 50; i++)); do
		bg "$HELPER" wait "$D/s" 10
		pid=$!
		# Half of the rounds race against a waiter that is already asleep in the kernel,
		# the others against one still starting.
		# (A waiter finding a count left by an earlier round takes it without sleeping.)
		if ((i % 2 == 0)); then
			until [[ $(waiters "$D/s") == 1 ]] || ! alive "$pid"; do sleep 0.01; done
		fi
		"$HELPER" post "$D/s"
		kill -TERM "$pid" 2>/dev/null || true
		reap "$pid"
		case $status in
		0) taken=$((taken + 1)) ;;
		143) killed=$((killed + 1)) ;;
		*) fail "round $i: the waiter exited $status" ;;
		esac
	done
	echo "# taken $taken, killed $killed" >&3
	run sem_peek "$D/s"
	assert_success
	assert_equal "$((taken + output))" 50
}
