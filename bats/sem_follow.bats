#!/usr/bin/env bats
# shellcheck disable=SC2016 # scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_follow NAME (semctl-helper follow NAME): print a time-stamped line with NAME's value
# and waiters now and whenever they change, until interrupted (Ctrl-C, SIGTERM) or NAME is
# destroyed; then a last line, and 0. 1 (the helper: 3) and one stderr line when NAME
# can't be followed.

load test_helper

# A follow line: local time with milliseconds, then what it says.
STAMP='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}'

# follow OUT CMD...: run CMD in the background with SIGINT at its default (a background
# job of a non-interactive shell starts with it ignored), stdout to OUT, stderr to
# OUT.err. Its pid is in $!.
follow() {
	local out=$1
	shift
	perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!"' -- "$@" >"$out" 2>"$out.err" 3>&- &
}

# wait_for_line FILE REGEX [SECONDS]: poll until a line of FILE matches REGEX.
wait_for_line() {
	local i limit=${3:-10}
	for ((i = 0; i < limit * 100; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	fail "no line matching '$2' in $1 within $limit s: $(cat "$1")"
}

# line_count FILE: how many lines FILE has.
line_count() {
	wc -l <"$1" | tr -d ' '
}

@test "follow prints a first line at once, then nothing while nothing changes" {
	sem_init "$D/s" 3
	follow "$D/f" "$HELPER" follow "$D/s"
	local pid=$!
	wait_for_line "$D/f" "^$STAMP value=3 waiters=0 last_pid=null\$" 3
	sleep 0.3
	assert_equal "$(line_count "$D/f")" 1
	assert_equal "$(cat "$D/f.err")" ""
	kill -TERM "$pid"
	reap "$pid"
	assert_success
}

@test "follow prints a new line within 1 s of a post, with the new value and its pid" {
	sem_init "$D/s" 3
	follow "$D/f" "$HELPER" follow "$D/s"
	local pid=$!
	wait_for_line "$D/f" "value=3 waiters=0"
	local t0 poster
	t0=$(now)
	"$HELPER" post "$D/s" &
	poster=$!
	wait "$poster"
	wait_for_line "$D/f" "^$STAMP value=4 waiters=0 last_pid=$poster\$" 3
	assert_elapsed "$t0" "$(now)" 0 1
	assert_equal "$(line_count "$D/f")" 2
	kill -TERM "$pid"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/f.err")" ""
}

@test "follow prints a line when a waiter blocks (waiters=1) and when it leaves" {
	sem_init "$D/s" 0
	follow "$D/f" "$HELPER" follow "$D/s"
	local pid=$!
	wait_for_line "$D/f" "value=0 waiters=0"
	bg_wait "$D/w" "$D/s" 30
	wait_for_waiters "$D/s" 1
	local t0
	t0=$(now)
	wait_for_line "$D/f" "^$STAMP value=0 waiters=1 " 3
	assert_elapsed "$t0" "$(now)" 0 1
	sem_post "$D/s"
	await "$D/w"
	# The waiter left with the count: a later line says waiters=0 again.
	local i
	for ((i = 0; i < 300; i++)); do
		(($(line_count "$D/f") >= 3)) && [[ $(tail -n 1 "$D/f") == *" value=0 waiters=0 "* ]] && break
		sleep 0.01
	done
	[[ $(tail -n 1 "$D/f") == *" value=0 waiters=0 "* ]] || fail "no line for the waiter leaving: $(cat "$D/f")"
	kill -TERM "$pid"
	reap "$pid"
	assert_success
}

@test "destroying the semaphore ends follow with a last line and 0" {
	sem_init "$D/s" 1
	follow "$D/f" "$HELPER" follow "$D/s"
	local pid=$!
	wait_for_line "$D/f" "value=1"
	local t0
	t0=$(now)
	sem_destroy "$D/s"
	reap "$pid"
	assert_success
	assert_elapsed "$t0" "$(now)" 0 1.5
	tail -n 1 "$D/f" | grep -Eq "^$STAMP destroyed $D/s\$" || fail "no last line: $(cat "$D/f")"
	assert_equal "$(line_count "$D/f")" 2
	assert_equal "$(cat "$D/f.err")" ""
}

@test "SIGINT or SIGTERM ends follow with a last line and 0" {
	local sig
	for sig in INT TERM; do
		sem_init "$D/s$sig" 1
		follow "$D/f$sig" "$HELPER" follow "$D/s$sig"
		local pid=$!
		wait_for_line "$D/f$sig" "value=1"
		kill "-$sig" "$pid"
		reap "$pid"
		assert_success
		assert_equal "$(line_count "$D/f$sig")" 2
		tail -n 1 "$D/f$sig" | grep -Eq "^$STAMP stopped following $D/s$sig\$" ||
			fail "no last line after SIG$sig: $(cat "$D/f$sig")"
		assert_equal "$(cat "$D/f$sig.err")" ""
		# Following took nothing.
		run sem_peek "$D/s$sig"
		assert_output 1
	done
}

@test "sem_follow: first line, a line after a post, and 0 with a last line at Ctrl-C" {
	sem_init "$D/s" 0
	cat >"$D/run" <<'EOF'
source "$REPO_ROOT/sh/sem.sh"
rc=0
sem_follow "$1" || rc=$?
echo "rc=$rc"
EOF
	# Ctrl-C reaches the whole foreground group: a session of its own stands for it.
	follow "$D/f" setsid bash "$D/run" "$D/s"
	local pid=$!
	wait_for_line "$D/f" "^$STAMP value=0 waiters=0 last_pid=null\$"
	sem_post "$D/s" 2
	wait_for_line "$D/f" "^$STAMP value=2 waiters=0 last_pid=[0-9]+\$" 3
	kill -INT -- "-$pid"
	reap "$pid"
	assert_success
	wait_for_line "$D/f" "^$STAMP stopped following $D/s\$" 1
	assert_equal "$(tail -n 1 "$D/f")" "rc=0"
	assert_equal "$(cat "$D/f.err")" ""
}

@test "sem_follow returns 0 after a last line when the semaphore is destroyed" {
	sem_init "$D/s" 0
	follow "$D/f" bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_follow "$1"; echo "rc=$?"' _ "$D/s"
	local pid=$!
	wait_for_line "$D/f" "value=0"
	sem_destroy "$D/s"
	reap "$pid"
	assert_success
	grep -Eq "^$STAMP destroyed $D/s\$" "$D/f" || fail "no last line: $(cat "$D/f")"
	assert_equal "$(tail -n 1 "$D/f")" "rc=0"
	assert_equal "$(cat "$D/f.err")" ""
}

@test "following a missing or stale name: 3 (sem_follow 1) and one line, nothing on stdout" {
	run --separate-stderr "$HELPER" follow "$D/missing"
	assert_failure 3
	assert_one_line_stderr
	[[ $stderr == *"$D/missing"* ]] || fail "the message does not name it: $stderr"
	run --separate-stderr sem_follow "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr "$HELPER" follow "$D/s"
	assert_failure 3
	assert_one_line_stderr
	run --separate-stderr sem_follow "$D/s"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_follow with the wrong number of arguments returns 1 and one usage line" {
	run --separate-stderr sem_follow
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_follow "$D/a" "$D/b"
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_follow S | head -1 returns within 1 s while nothing changes: one line, 0" {
	sem_init "$D/s" 3
	local t0 t1
	t0=$(now)
	run --separate-stderr timeout 10 bash -c '
		source "$REPO_ROOT/sh/sem.sh"
		sem_follow "$1" | head -1
		echo "statuses=${PIPESTATUS[*]}"
	' _ "$D/s"
	t1=$(now)
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp "^$STAMP value=3 waiters=0 last_pid=null\$"
	assert_line --index 1 "statuses=0 0"
	assert_equal "${#lines[@]}" 2
	assert_elapsed "$t0" "$t1" 0 1.5
}

@test "follow ends quietly with 0 when its reader goes, without a change to print" {
	sem_init "$D/s" 3
	local t0 t1
	t0=$(now)
	run --separate-stderr timeout 10 bash -c '"$1" follow "$2" | { IFS= read -r line; echo "$line"; }; echo "status=${PIPESTATUS[0]}"' \
		_ "$HELPER" "$D/s"
	t1=$(now)
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp "^$STAMP value=3 waiters=0 last_pid=null\$"
	assert_line --index 1 "status=0"
	assert_elapsed "$t0" "$t1" 0 1.5
}
