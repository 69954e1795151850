#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# shellcheck disable=SC2154 # bats run sets stderr
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# What only the POSIX kind (posix:/NAME, glibc's /dev/shm/sem.NAME) does, from the outside:
# its names, what it refuses rather than answer wrongly, a shared /dev/shm (symlinks,
# files of the wrong size, FIFOs, other uids' files), the mode, destroy and unlink
# ending a wait, counts given back by a guard or a holder through kill -9, and
# status/list --json. What every kind promises is in bats/contract/ (run with
# SEM_TEST_KIND=posix).
#
# Every test uses its own names, pt-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER-*; teardown
# removes whatever is left of them in /dev/shm and fails the test if there was something.

load test_helper

eval "helper_$(declare -f setup)"
setup() {
	helper_setup
	P=pt-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER
	A=posix:/$P-a
	FA=/dev/shm/sem.$P-a
}

eval "helper_$(declare -f teardown)"
teardown() {
	local rc=0 left
	helper_teardown || rc=$?
	left=$(compgen -G "/dev/shm/sem.$P-*") || true
	if [[ -n $left ]]; then
		echo "left behind: $left" >&2
		rm -f "/dev/shm/sem.$P-"*
		rc=1
	fi
	return "$rc"
}

# helper ARGS...: run the helper under a 5 s timeout (a hang fails as 124, not the suite).
helper() {
	run --separate-stderr timeout 5 "$HELPER" "$@"
}

# lib FUNC ARGS...: run a sem.sh function in a fresh bash under a 5 s timeout.
lib() {
	run --separate-stderr timeout 5 bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@"
}

# value_is NAME N: NAME's value is exactly N.
value_is() {
	assert_equal "$("$HELPER" peek "$1")" "$2"
}

# asleep NAME: how many `semctl-helper wait` processes naming NAME are asleep (state S).
asleep() {
	ps -e -ww -o stat=,args= | awk -v name="$1" '
		$1 ~ /^S/ && $2 ~ /(^|\/)semctl-helper$/ && $3 == "wait" {
			for (i = 4; i <= NF; i++) if ($i == name) { n++; break }
		}
		END { print n + 0 }'
}

# asleep_is NAME N: N helpers wait on NAME, asleep, now.
asleep_is() {
	[[ $(asleep "$1") == "$2" ]]
}

# wait_asleep NAME: poll until one helper waits on NAME, asleep; then a short settle (asleep
# may still be on the way into sem_timedwait: POSIX can't count its waiters).
wait_asleep() {
	poll 10 asleep_is "$1" 1
	sleep 0.1
}

# value_now NAME N: NAME's value is N now (for poll: it asks again every time).
value_now() {
	[[ $("$HELPER" peek "$1") == "$2" ]]
}

# back_within NAME N SECONDS T0: NAME's value becomes N no later than SECONDS after T0.
back_within() {
	local name=$1 n=$2 limit=$3 t0=$4 i
	for ((i = 0; i < 500; i++)); do
		[[ $("$HELPER" peek "$name") == "$n" ]] && break
		sleep 0.01
	done
	assert_elapsed "$t0" "$(now)" 0 "$limit"
	value_is "$name" "$n"
}

# no_helper_left: no process (guard, holder, waiter) names this test's semaphores any more.
no_helper_left() {
	poll 2 eval '! pgrep -f -- "$P-" >/dev/null' ||
		fail "left running: $(pgrep -af -- "$P-")"
}

# --- names -----------------------------------------------------------------------------

@test "posix:/x, posix:x and posix://x are one semaphore; the file is /dev/shm/sem.x" {
	sem_init "$A" 1
	[[ -f $FA ]] || fail "no $FA"
	sem_post "posix:$P-a"
	run --separate-stderr sem_peek "posix://$P-a"
	assert_success
	assert_equal "$stderr" ""
	assert_output 2
	helper init "posix:$P-a" 1
	assert_failure 6
	assert_one_line_stderr
	run --separate-stderr sem_destroy "posix://$P-a"
	assert_success
	assert_silent
	[[ ! -e $FA ]] || fail "$FA is still there"
}

@test "bad POSIX names: exit 2 (sem.sh 1), one line, nothing created; 251 bytes is fine" {
	local long251 long252 n left
	long251=$P-$(printf 'a%.0s' $(seq $((251 - ${#P} - 1))))
	long252=${long251}b
	assert_equal "${#long252}" 252
	for n in posix: "posix:/" "posix:/$P-a/b" "posix:/$P-a b" posix:/. posix:/.. "posix:/$long252"; do
		helper init "$n" 1
		assert_failure 2
		assert_one_line_stderr
		[[ $stderr == "semctl-helper: init: invalid POSIX semaphore name "* ]] || fail "$n: $stderr"
		helper peek "$n"
		assert_failure 2
		assert_one_line_stderr
		lib sem_init "$n" 1
		assert_failure 1
		assert_one_line_stderr
	done
	left=$(compgen -G "/dev/shm/sem.$P-*") && fail "created: $left"
	[[ ! -e /dev/shm/sem.. && ! -e /dev/shm/sem... ]] || fail "created sem.. or sem..."
	helper init "posix:/$long251" 1
	assert_success
	assert_silent
	[[ -f /dev/shm/sem.$long251 ]] || fail "no file for the 251-byte name"
	sem_destroy "posix:/$long251"
}

# --- what POSIX can't do: exit 8, never a wrong answer ---------------------------------

@test "relax, wait -n 2, hold -n 2, init --group: exit 8, one line, value untouched" {
	sem_init "$A" 3
	helper relax "$A"
	assert_failure 8
	assert_one_line_stderr
	assert_equal "$stderr" "semctl-helper: relax: $A: a posix semaphore can't count its waiters, so it can't relax"
	helper wait "$A" -n 2
	assert_failure 8
	assert_one_line_stderr
	assert_equal "$stderr" "semctl-helper: wait: $A: a posix semaphore can't take 2 counts at once (POSIX takes one at a time)"
	# hold answers on stdout ("no STATUS"); the process started ends at once (it forks).
	run --separate-stderr timeout 5 "$HELPER" hold "$A" -n 2 </dev/null
	assert_success
	assert_output "no 8"
	assert_stderr_one_line
	helper init --group 0 "posix:/$P-b" 1
	assert_failure 8
	assert_one_line_stderr
	[[ $stderr == *"can't be given a group"* ]] || fail "$stderr"
	[[ ! -e /dev/shm/sem.$P-b ]] || fail "init --group created the semaphore"
	value_is "$A" 3
	# sem.sh: 1, with the same line where the function prints its reasons.
	lib sem_relax "$A"
	assert_failure 1
	assert_silent
	lib sem_hold -n 2 "$A"
	assert_failure 1
	assert_one_line_stderr
	lib sem_init --group 0 "posix:/$P-b" 1
	assert_failure 1
	assert_one_line_stderr
	[[ ! -e /dev/shm/sem.$P-b ]] || fail "sem_init --group created the semaphore"
	value_is "$A" 3
	no_helper_left
	sem_destroy "$A"
}

@test "run -n 2: refused with run's own failure code 125, one line, PROGRAM never runs" {
	# run keeps 0..255 for PROGRAM, so its own failures are 125 (README: run has its own
	# codes), not 8; the line says why.
	sem_init "$A" 3
	helper run "$A" -n 2 -- touch "$D/ran"
	assert_failure 125
	assert_one_line_stderr
	assert_equal "$stderr" "semctl-helper: run: $A: a posix semaphore can't take 2 counts at once (POSIX takes one at a time)"
	lib sem_run -n 2 "$A" touch "$D/ran"
	assert_failure 125
	assert_one_line_stderr
	lib sem_run -n 2 "$A" true
	assert_failure 125
	assert_one_line_stderr
	[[ ! -e $D/ran ]] || fail "PROGRAM ran"
	value_is "$A" 3
	no_helper_left
	sem_destroy "$A"
}

# --- a shared /dev/shm -----------------------------------------------------------------

@test "a symlink at /dev/shm/sem.NAME is refused, never followed: the target is untouched" {
	local c
	sem_init "$A" 2
	ln -s "$FA" "/dev/shm/sem.$P-l"
	for c in peek post trywait "wait -w 0.2" status "status --json" destroy; do
		# shellcheck disable=SC2086 # one word per argument
		helper ${c%% *} "posix:/$P-l" ${c#"${c%% *}"}
		assert_failure 3
		assert_one_line_stderr
		[[ $stderr == *"a symlink stands at /dev/shm/sem.$P-l"* ]] || fail "$c: $stderr"
	done
	run --separate-stderr timeout 5 "$HELPER" run "posix:/$P-l" -- touch "$D/ran"
	assert_failure 125
	assert_one_line_stderr
	[[ ! -e $D/ran ]] || fail "run ran PROGRAM"
	helper init "posix:/$P-l" 1
	assert_failure 6
	assert_one_line_stderr
	lib sem_post "posix:/$P-l"
	assert_failure 1
	value_is "$A" 2
	[[ -L /dev/shm/sem.$P-l ]] || fail "the symlink was removed"
	rm "/dev/shm/sem.$P-l"
	sem_destroy "$A"
}

@test "a 0-byte and a 64-byte file at the name are refused, no SIGBUS (not 135), untouched" {
	local c n
	: >"/dev/shm/sem.$P-e"
	head -c 64 /dev/zero >"/dev/shm/sem.$P-f"
	for n in e f; do
		for c in peek post trywait "wait -w 0.2" status "status --json"; do
			# shellcheck disable=SC2086 # one word per argument
			helper ${c%% *} "posix:/$P-$n" ${c#"${c%% *}"}
			assert_failure 3
			assert_one_line_stderr
			[[ $stderr == *"not a semaphore: a file of "*" bytes (a sem_t is 32)"* ]] || fail "$c: $stderr"
		done
		run --separate-stderr timeout 5 "$HELPER" hold "posix:/$P-$n" </dev/null
		assert_success
		assert_output "no 3"
		assert_stderr_one_line
		run --separate-stderr timeout 5 "$HELPER" run "posix:/$P-$n" -- touch "$D/ran"
		((status != 135)) || fail "run died of SIGBUS"
		assert_failure 125
		assert_one_line_stderr
		helper init "posix:/$P-$n" 1
		assert_failure 6
		assert_one_line_stderr
		lib sem_wait "posix:/$P-$n" 0.2
		assert_failure 1
		assert_silent
	done
	[[ ! -e $D/ran ]] || fail "run ran PROGRAM"
	assert_equal "$(stat -c %s "/dev/shm/sem.$P-e")" 0
	assert_equal "$(stat -c %s "/dev/shm/sem.$P-f")" 64
	cmp -s "/dev/shm/sem.$P-f" <(head -c 64 /dev/zero) || fail "the 64-byte file was written"
	rm "/dev/shm/sem.$P-e" "/dev/shm/sem.$P-f"
}

@test "a FIFO at the name doesn't hang anything: refused with one line, left in place" {
	local c t0
	mkfifo "/dev/shm/sem.$P-p"
	t0=$(now)
	for c in peek post trywait "wait -w 5" status "status --json" destroy "init 1"; do
		# shellcheck disable=SC2086 # one word per argument
		helper ${c%% *} "posix:/$P-p" ${c#"${c%% *}"}
		((status != 124)) || fail "$c hung"
		if [[ $c == init* ]]; then
			assert_failure 6
		else
			assert_failure 3
		fi
		assert_one_line_stderr
		[[ $stderr == *"FIFO"* ]] || fail "$c: $stderr"
	done
	assert_elapsed "$t0" "$(now)" 0 3
	[[ -p /dev/shm/sem.$P-p ]] || fail "the FIFO is gone"
	rm "/dev/shm/sem.$P-p"
}

@test "another uid's semaphore: refused naming its owner; used once SEM_POSIX_TRUST names it" {
	require_setpriv
	local c
	as_nobody "$HELPER" init "$A" 2 0666
	assert_equal "$(stat -c %u "$FA")" 65534
	for c in peek post trywait "wait -w 0.2" status; do
		# shellcheck disable=SC2086 # one word per argument
		helper ${c%% *} "$A" ${c#"${c%% *}"}
		assert_failure 4
		assert_one_line_stderr
		[[ $stderr == *"owned by uid 65534"* ]] || fail "$c: $stderr"
	done
	lib sem_post "$A"
	assert_failure 1
	assert_equal "$(as_nobody "$HELPER" peek "$A")" 2
	# Trusted by uid or by name: used like one's own.
	SEM_POSIX_TRUST=65534 helper post "$A"
	assert_success
	assert_silent
	SEM_POSIX_TRUST=0,65534 helper peek "$A"
	assert_success
	assert_output 3
	SEM_POSIX_TRUST=nobody helper trywait "$A"
	assert_success
	assert_silent
	SEM_POSIX_TRUST=65534 lib sem_wait "$A" 0
	assert_success
	assert_silent
	assert_equal "$(as_nobody "$HELPER" peek "$A")" 1
	# Trust doesn't make it ours: only its owner destroys it.
	SEM_POSIX_TRUST=65534 helper destroy "$A"
	assert_failure 4
	assert_one_line_stderr
	as_nobody "$HELPER" destroy "$A"
}

@test "status's refusal of another uid's semaphore names the semaphore once" {
	require_setpriv
	as_nobody "$HELPER" init "$A" 2
	helper status "$A"
	as_nobody "$HELPER" destroy "$A"
	assert_failure 4
	assert_one_line_stderr
	assert_equal "$stderr" "semctl-helper: status: $A: owned by uid 65534, not by you or root: not mapping a file another user can truncate under us (to use it, trust its owner: SEM_POSIX_TRUST=65534)"
}

@test "another uid can't destroy yours; init on a name another uid made first says whose" {
	require_setpriv
	sem_init "$A" 2 0666
	run --separate-stderr as_nobody "$HELPER" destroy "$A"
	assert_failure 4
	assert_one_line_stderr
	[[ $stderr == *"not the owner"*"uid 0"* ]] || fail "$stderr"
	[[ -f $FA ]] || fail "destroyed by another uid"
	value_is "$A" 2
	run --separate-stderr as_nobody bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_destroy "$1"' _ "$A"
	assert_failure 1
	assert_one_line_stderr
	sem_destroy "$A"

	as_nobody "$HELPER" init "posix:/$P-b" 1 0644
	helper init "posix:/$P-b" 5
	assert_failure 6
	assert_one_line_stderr
	[[ $stderr == *"owned by uid 65534"* ]] || fail "$stderr"
	lib sem_init "posix:/$P-b" 5
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *"owned by uid 65534"* ]] || fail "$stderr"
	assert_equal "$(stat -c %u:%a "/dev/shm/sem.$P-b")" 65534:644
	assert_equal "$(as_nobody "$HELPER" peek "posix:/$P-b")" 1
	as_nobody "$HELPER" destroy "posix:/$P-b"
}

# --- mode ------------------------------------------------------------------------------

@test "sem_init posix:/x 1 0640 gives the file exactly 0640 under umask 077 and 000" {
	(
		umask 077
		sem_init "$A" 1 0640
		sem_init "posix:/$P-d" 1
	)
	(
		umask 000
		sem_init "posix:/$P-b" 1 0640
		sem_init "posix:/$P-c" 1
	)
	assert_equal "$(stat -c %a "$FA")" 640
	assert_equal "$(stat -c %a "/dev/shm/sem.$P-b")" 640
	assert_equal "$(stat -c %a "/dev/shm/sem.$P-c")" 600
	assert_equal "$(stat -c %a "/dev/shm/sem.$P-d")" 600
	local n
	for n in a b c d; do
		sem_destroy "posix:/$P-$n"
	done
}

# --- destroy and unlink end a wait -----------------------------------------------------

@test "sem_destroy ends a blocked sem_wait with 1 within 1 s, silent" {
	local t0 rc end
	sem_init "$A" 0
	bg_wait "$D/w" "$A" 30
	wait_asleep "$A"
	t0=$(now)
	sem_destroy "$A"
	await "$D/w" 5
	read -r rc _ end <"$D/w"
	assert_equal "$rc" 1
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"
	no_helper_left
}

@test "rm /dev/shm/sem.NAME ends a blocked sem_wait with 1 within 1 s (exit 3 for the helper)" {
	local t0 rc end
	sem_init "$A" 0
	bg_wait "$D/w" "$A" 30
	wait_asleep "$A"
	t0=$(now)
	rm "$FA"
	await "$D/w" 5
	read -r rc _ end <"$D/w"
	assert_equal "$rc" 1
	assert_elapsed "$t0" "$end" 0 1
	assert_waiter_silent "$D/w"

	sem_init "$A" 0
	bg "$HELPER" wait "$A" 30 >"$D/h.out" 2>"$D/h.err"
	local job=$!
	wait_asleep "$A"
	rm "$FA"
	poll 2 gone "$job"
	reap "$job"
	assert_equal "$status" 3
	assert_equal "$(cat "$D/h.out")" ""
	assert_equal "$(wc -l <"$D/h.err")" 1
	grep -q "destroyed while waiting" "$D/h.err" || fail "$(cat "$D/h.err")"
	no_helper_left
}

@test "sem_follow prints a last 'destroyed' line and returns 0 when the semaphore goes" {
	sem_init "$A" 0
	bg sem_follow "$A" >"$D/f" 2>"$D/f.err"
	local job=$!
	poll 5 test -s "$D/f"
	sem_post "$A"
	poll 5 grep -q "value=1" "$D/f"
	sem_destroy "$A"
	poll 2 gone "$job"
	reap "$job"
	assert_equal "$status" 0
	assert_equal "$(cat "$D/f.err")" ""
	head -n 1 "$D/f" | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ value=0 waiters=null last_pid=null\$" ||
		fail "first line: $(cat "$D/f")"
	tail -n 1 "$D/f" | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ destroyed $A\$" ||
		fail "no last line: $(cat "$D/f")"
	no_helper_left
}

# --- counts through kills: a guard or the holder gives them back -----------------------

@test "sem_run PROGRAM killed -9: the guard posts the count back within 1 s" {
	local job prog t0
	sem_init "$A" 2
	bg sem_run "$A" sleep 30
	job=$!
	poll 5 eval 'prog=$(pgrep -P "$job" -x sleep)'
	value_is "$A" 1
	pgrep -f -- "guard .* $A\$" >/dev/null || fail "no guard for $A: $(pgrep -af -- "$P")"
	t0=$(now)
	kill -9 "$prog"
	reap "$job"
	assert_equal "$status" 137
	back_within "$A" 2 1 "$t0"
	no_helper_left
	sem_destroy "$A"
}

@test "sem_run FUNCTION whose shell is killed -9: the holder posts the count back" {
	local job t0
	sem_init "$A" 2
	mkfifo "$D/ff"
	# The function waits in a builtin (read on a FIFO opened read-write), so that no
	# process of its own keeps the holder's pipe open after the shell dies.
	bg bash -c 'source "$REPO_ROOT/sh/sem.sh"; ff=$2; f() { read -r -t 30 _ <>"$ff"; }; sem_run "$1" f' _ "$A" "$D/ff" 2>"$D/err"
	job=$!
	poll 5 value_now "$A" 1
	pgrep -f -- "hold -- $A\$" >/dev/null || fail "no holder for $A: $(pgrep -af -- "$P")"
	t0=$(now)
	kill -9 "$job"
	reap "$job"
	assert_equal "$status" 137
	back_within "$A" 2 1 "$t0"
	assert_equal "$(cat "$D/err")" ""
	no_helper_left
	sem_destroy "$A"
}

@test "sem_hold then the shell killed -9: the holder survives, sees the shell end and posts" {
	local job holder t0
	sem_init "$A" 2
	mkfifo "$D/ff"
	bg bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_hold "$1" && echo held >"$2.held"; read -r -t 30 _ <>"$2"' _ "$A" "$D/ff"
	job=$!
	poll 5 test -s "$D/ff.held"
	value_is "$A" 1
	holder=$(pgrep -f -- "hold --shell -- $A\$") || fail "no holder: $(pgrep -af -- "$P")"
	t0=$(now)
	kill -9 "$job"
	reap "$job"
	assert_equal "$status" 137
	back_within "$A" 2 1 "$t0"
	# Nobody killed the holder: it ended by itself, after posting.
	poll 2 gone "$holder"
	no_helper_left
	sem_destroy "$A"
}

@test "a kill -9 of the whole process group takes no POSIX count with it (function and sem_hold)" {
	local job t0
	sem_init "$A" 2
	mkfifo "$D/ff"
	# A session and process group of its own, as a CI job's; the holders leave it once
	# they hold, since nothing else remembers a POSIX count.
	setsid bash -c 'source "$REPO_ROOT/sh/sem.sh"; ff=$2; f() { read -r -t 30 _ <>"$ff"; }; sem_hold "$1" && sem_run "$1" f' _ "$A" "$D/ff" 3>&- &
	job=$!
	poll 5 value_now "$A" 0
	t0=$(now)
	kill -9 -- "-$job"
	wait "$job" 2>/dev/null || true
	back_within "$A" 2 2 "$t0"
	no_helper_left
	sem_destroy "$A"
}

@test "sem_hold + sem_release: the count is back before sem_release returns" {
	sem_init "$A" 2
	run --separate-stderr bash -c '
		source "$REPO_ROOT/sh/sem.sh"
		sem_hold "$1" || exit 9
		echo "held $("$HELPER" peek "$1")"
		sem_release "$1" || exit 8
		echo "released $("$HELPER" peek "$1")"
		sem_release "$1" && exit 7
		echo "again 1"
	' _ "$A"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'held 1\nreleased 2\nagain 1'
	value_is "$A" 2
	no_helper_left
	sem_destroy "$A"
}

# --- status --json and list --json -----------------------------------------------------

@test "status --json and list --json posix: parse: kind posix, waiters null, the file's inode" {
	local ino j
	sem_init "$A" 3 0640
	ino=$(stat -c %i "$FA")
	helper status --json "$A"
	assert_success
	assert_equal "$stderr" ""
	[[ $output != *$'\n'* ]] || fail "more than one line: $output"
	j=$output
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["name"] == sys.argv[2], d
assert d["kind"] == "posix" and d["state"] == "live", d
assert d["value"] == 3 and d["waiters"] is None and d["capacity"] is None, d
assert d["last_pid"] is None and d["last_op"] is None, d
assert d["mode"] == "0640" and d["owner"] == 0 and d["access"] is True, d
assert d["posix"]["inode"] == int(sys.argv[3]), d
assert type(d["posix"]["device"]) is int and type(d["posix"]["created"]) is int, d
assert "sysv" not in d and "key" not in d, d
' "$j" "$A" "$ino" || fail "status --json: $j"

	helper list --json posix:
	assert_success
	assert_equal "$stderr" ""
	python3 -c '
import json, sys
entries = json.loads(sys.argv[1])
assert type(entries) is list, entries
mine = [e for e in entries if e.get("name") == sys.argv[2]]
assert len(mine) == 1, entries
d = mine[0]
assert d["kind"] == "posix" and d["waiters"] is None and d["value"] == 3, d
assert d["posix"]["inode"] == int(sys.argv[3]), d
' "$output" "$A" "$ino" || fail "list --json posix:: $output"
	sem_destroy "$A"
}
