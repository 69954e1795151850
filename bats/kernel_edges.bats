#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# The kernel's edge cases: a set removed under its waiters (EIDRM), the value limit
# (ERANGE at 32767), the set limits (ENOSPC at SEMMNI or SEMMNS, in a nested IPC namespace
# with lowered limits), every set behind the names removed as systemd-logind's RemoveIPC
# does, and a timed wait stopped and continued (SIGSTOP/SIGCONT).

load test_helper

# bg_helper_wait OUT NAME [TIMEOUT]: run `semctl-helper wait` in the background, its
# stdout and stderr in OUT.stdout and OUT.stderr; its pid in $!.
bg_helper_wait() {
	local out=$1
	shift
	"$HELPER" wait "$@" >"$out.stdout" 2>"$out.stderr" 3>&- &
}

# assert_file_one_line FILE: FILE holds exactly one non-empty line.
assert_file_one_line() {
	local text
	text=$(<"$1")
	[[ -n $text && $text != *$'\n'* ]] || fail "expected one line in $1, got: '$text'"
}

# in_private_ipc LIMITS SCRIPT ARG...: run SCRIPT with bash in a new IPC namespace whose
# /proc/sys/kernel/sem is LIMITS (SEMMSL SEMMNS SEMOPM SEMMNI), or skip.
in_private_ipc() {
	if [[ $(id -u) != 0 ]] || ! unshare --ipc true 2>/dev/null; then
		skip "needs root and unshare --ipc"
	fi
	local limits=$1 script=$2
	shift 2
	run --separate-stderr timeout 20 unshare --ipc bash -c '
		echo "$0" >/proc/sys/kernel/sem || exit 90
		source "$REPO_ROOT/sh/sem.sh"
		count_sets() { ipcs -s | grep -c "^0x"; }
		'"$script" "$limits" "$@"
	((status != 90)) || skip "cannot set the semaphore limits in a new IPC namespace"
	((status != 124)) || fail "hung"
}

# --- EIDRM: the set removed under its waiters ---

@test "EIDRM: sem_destroy wakes every blocked sem_wait at once with 1, silently" {
	sem_init "$D/s" 0
	bg_wait "$BATS_TEST_TMPDIR/w1" "$D/s"
	bg_wait "$BATS_TEST_TMPDIR/w2" "$D/s" 60
	wait_for_waiters "$D/s" 2
	local t0
	t0=$(now)
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_silent
	local w rc start end
	for w in w1 w2; do
		await "$BATS_TEST_TMPDIR/$w" 5
		read -r rc start end <"$BATS_TEST_TMPDIR/$w"
		assert_equal "$rc" 1
		assert_elapsed "$t0" "$end" 0 2
		assert_waiter_silent "$BATS_TEST_TMPDIR/$w"
	done
	[[ ! -e $D/s ]]
}

@test "EIDRM: with SEM_VERBOSE=1, the woken sem_wait says why in one line" {
	sem_init "$D/s" 0
	SEM_VERBOSE=1 bg_wait "$BATS_TEST_TMPDIR/w" "$D/s"
	wait_for_waiters "$D/s" 1
	sem_destroy "$D/s"
	await "$BATS_TEST_TMPDIR/w" 5
	assert_equal "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/w")" 1
	assert_file_one_line "$BATS_TEST_TMPDIR/w.stderr"
	grep -q 'destroyed while waiting' "$BATS_TEST_TMPDIR/w.stderr" ||
		fail "no reason given: $(<"$BATS_TEST_TMPDIR/w.stderr")"
}

@test "EIDRM: the helper's blocked wait exits 3 with one line, timed or not" {
	sem_init "$D/s" 0
	local -a pids
	bg_helper_wait "$BATS_TEST_TMPDIR/h1" "$D/s"
	pids[1]=$!
	bg_helper_wait "$BATS_TEST_TMPDIR/h2" "$D/s" 60
	pids[2]=$!
	wait_for_waiters "$D/s" 2
	sem_destroy "$D/s"
	local h
	for h in 1 2; do
		reap "${pids[h]}"
		assert_equal "$status" 3
		assert_equal "$(<"$BATS_TEST_TMPDIR/h$h.stdout")" ''
		assert_file_one_line "$BATS_TEST_TMPDIR/h$h.stderr"
		grep -q "^semctl-helper: wait: .*destroyed while waiting" "$BATS_TEST_TMPDIR/h$h.stderr" ||
			fail "unexpected message: $(<"$BATS_TEST_TMPDIR/h$h.stderr")"
	done
}

# --- ERANGE: the value limit ---

@test "ERANGE: sem_post at 32767 returns 1, silently, and leaves the value" {
	sem_init "$D/s" 32766
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 32767
	run --separate-stderr sem_post "$D/s"
	assert_failure 1
	assert_silent
	run --separate-stderr env SEM_VERBOSE=1 bash -c 'source "$0"; sem_post "$1"' \
		"$REPO_ROOT/sh/sem.sh" "$D/s"
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *32767* ]] || fail "the message does not name 32767: $stderr"
	run sem_peek "$D/s"
	assert_output 32767
	# Below the limit again, a post works.
	sem_trywait "$D/s"
	sem_post "$D/s"
	run sem_peek "$D/s"
	assert_output 32767
}

@test "ERANGE: the helper's post at 32767 exits 5 with one line naming the limit" {
	sem_init "$D/s" 32767
	local i
	for i in 1 2 3; do
		run --separate-stderr "$HELPER" post "$D/s"
		assert_failure 5
		assert_one_line_stderr
		[[ $stderr == "semctl-helper: post: "*32767* ]] || fail "unexpected message: $stderr"
	done
	run sem_peek "$D/s"
	assert_output 32767
}

@test "ERANGE: a post of N that would pass 32767 fails and adds nothing" {
	sem_init "$D/s" 32760
	run --separate-stderr "$HELPER" post "$D/s" 8
	assert_failure 5
	assert_one_line_stderr
	run --separate-stderr sem_post "$D/s" 8
	assert_failure 1
	assert_silent
	run sem_peek "$D/s"
	assert_output 32760
	sem_post "$D/s" 7
	run sem_peek "$D/s"
	assert_output 32767
}

# --- ENOSPC: the set limits, in a nested IPC namespace ---

@test "ENOSPC: init when SEMMNI is used up exits 5 (sem_init 1), one line, nothing left" {
	# SEMMNI 4: fill the four sets, then both inits must fail without a trace.
	in_private_ipc "250 32000 32 4" '
		for i in 1 2 3 4; do ipcmk -S 1 >/dev/null || exit 91; done
		before=$(count_sets)
		"$HELPER" init "$1" 1 2>"$2.helper"
		echo "helper=$?"
		sem_init "$1" 1 2>"$2.lib"
		echo "lib=$?"
		echo "sets=$before,$(count_sets)"
		[[ -e $1 ]] && echo "a file was left"
		true' "$D/s" "$BATS_TEST_TMPDIR/err"
	assert_success
	assert_output $'helper=5\nlib=1\nsets=4,4'
	assert_equal "$stderr" ''
	local f
	for f in helper lib; do
		assert_file_one_line "$BATS_TEST_TMPDIR/err.$f"
		grep -q "^semctl-helper: init: .*SEMMNI" "$BATS_TEST_TMPDIR/err.$f" ||
			fail "the message does not name SEMMNI: $(<"$BATS_TEST_TMPDIR/err.$f")"
	done
	[[ ! -e $D/s ]]
}

@test "ENOSPC: init when SEMMNS is used up exits 5 too" {
	# SEMMNS 3: three semaphores in all, whatever the number of sets.
	in_private_ipc "250 3 32 100" '
		for i in 1 2 3; do ipcmk -S 1 >/dev/null || exit 91; done
		"$HELPER" init "$1" 1
		echo "helper=$? sets=$(count_sets)"
		[[ -e $1 ]] && echo "a file was left"
		true' "$D/s"
	assert_success
	assert_output 'helper=5 sets=3'
	assert_stderr_one_line
	[[ $stderr == *SEMMNS* ]] || fail "the message does not name SEMMNS: $stderr"
}

@test "ENOSPC: reclaiming a stale name without room fails with 5 and keeps the stale file" {
	in_private_ipc "250 32000 32 2" '
		sem_init "$1" 1 || exit 91
		ipcrm -s "$(sed "s/.* id=\([0-9]*\) .*/\1/" "$1")"
		before=$(stat -c "%i %s %Y" "$1")
		ipcmk -S 1 >/dev/null && ipcmk -S 1 >/dev/null || exit 92
		"$HELPER" init "$1" 2
		echo "helper=$? sets=$(count_sets)"
		[[ $(stat -c "%i %s %Y" "$1") == "$before" ]] || echo "the stale file changed"
		rm "$1"' "$D/s"
	assert_success
	assert_output 'helper=5 sets=2'
	assert_stderr_one_line
}

# --- RemoveIPC: every set behind the names removed ---

# remove_all_sets NAME...: what RemoveIPC does to a user's sets. In a private IPC namespace,
# every set goes (ipcrm -a); elsewhere, only the sets behind NAMEs, not other processes'.
remove_all_sets() {
	if [[ ${SEM_TEST_PRIVATE_IPC:-} == 1 ]]; then
		ipcrm --all=sem
	else
		local n
		for n in "$@"; do ipcrm -s "$(set_id "$n")"; done
	fi
}

@test "RemoveIPC: waiters wake with 1 and every operation reports the names stale" {
	sem_init "$D/a" 0
	sem_init "$D/b" 5
	sem_init "$HOME/c" 1 0666
	bg_wait "$BATS_TEST_TMPDIR/w" "$D/a"
	bg_helper_wait "$BATS_TEST_TMPDIR/h" "$D/a" 60
	local hp=$!
	wait_for_waiters "$D/a" 2
	remove_all_sets "$D/a" "$D/b" "$HOME/c"
	await "$BATS_TEST_TMPDIR/w" 5
	assert_equal "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/w")" 1
	assert_waiter_silent "$BATS_TEST_TMPDIR/w"
	reap "$hp"
	assert_equal "$status" 3
	local name verb
	for name in "$D/a" "$D/b" c; do
		for verb in post wait trywait peek; do
			run --separate-stderr timeout 10 "$HELPER" "$verb" "$name"
			assert_failure 3
			assert_one_line_stderr
			[[ $stderr == *"stale: its kernel set is gone"* ]] || fail "$verb $name: $stderr"
			run --separate-stderr timeout 10 bash -c 'source "$0"; "$@"' "$REPO_ROOT/sh/sem.sh" \
				"sem_$verb" "$name"
			assert_failure 1
			assert_silent
		done
	done
}

@test "RemoveIPC: sem_init reclaims the stale names and sem_destroy removes them" {
	sem_init "$D/a" 0
	sem_init "$D/b" 5
	sem_init "$HOME/c" 1
	remove_all_sets "$D/a" "$D/b" "$HOME/c"
	run --separate-stderr sem_init "$D/a" 3
	assert_success
	assert_silent
	run --separate-stderr "$HELPER" init c 4 0660
	assert_success
	assert_silent
	run sem_peek "$D/a"
	assert_output 3
	run sem_peek c
	assert_output 4
	sem_post "$D/a"
	sem_wait "$D/a" 1
	run --separate-stderr sem_destroy "$D/b"
	assert_success
	assert_silent
	[[ ! -e $D/b ]]
}

# --- SIGSTOP/SIGCONT during a timed wait ---

@test "SIGSTOP/SIGCONT: a 2 s wait stopped for 1.5 s still returns at about 2 s" {
	sem_init "$D/s" 0
	bg_wait "$BATS_TEST_TMPDIR/w" "$D/s" 2
	local pid=$! waiter
	wait_for_waiters "$D/s" 1
	waiter=$(waiter_of "$pid")
	sleep 0.3
	kill -STOP "$waiter"
	sleep 1.5
	kill -CONT "$waiter"
	await "$BATS_TEST_TMPDIR/w" 10
	local rc start end
	read -r rc start end <"$BATS_TEST_TMPDIR/w"
	assert_equal "$rc" 1
	assert_waiter_silent "$BATS_TEST_TMPDIR/w"
	# Restarting the full 2 s after SIGCONT would end it at about 3.8 s.
	assert_elapsed "$start" "$end" 1.8 3.5
	run sem_peek "$D/s"
	assert_output 0
}

@test "SIGSTOP/SIGCONT: a wait stopped past its deadline returns once continued" {
	sem_init "$D/s" 0
	bg_helper_wait "$BATS_TEST_TMPDIR/h" "$D/s" 0.5
	local pid=$! t0
	t0=$(now)
	wait_for_waiters "$D/s" 1
	kill -STOP "$pid"
	sleep 1.5
	kill -CONT "$pid"
	reap "$pid"
	assert_equal "$status" 1
	assert_elapsed "$t0" "$(now)" 1.4 2.8
	assert_file_one_line "$BATS_TEST_TMPDIR/h.stderr"
	grep -q 'timed out' "$BATS_TEST_TMPDIR/h.stderr" || fail "$(<"$BATS_TEST_TMPDIR/h.stderr")"
}

@test "SIGSTOP/SIGCONT: a count posted while the waiter is stopped is taken once continued" {
	sem_init "$D/s" 0
	bg_wait "$BATS_TEST_TMPDIR/w" "$D/s" 30
	local pid=$! waiter
	wait_for_waiters "$D/s" 1
	waiter=$(waiter_of "$pid")
	kill -STOP "$waiter"
	sem_post "$D/s"
	sleep 0.2
	kill -CONT "$waiter"
	await "$BATS_TEST_TMPDIR/w" 10
	assert_equal "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/w")" 0
	assert_waiter_silent "$BATS_TEST_TMPDIR/w"
	run sem_peek "$D/s"
	assert_output 0
}
