#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $1, $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# shellcheck disable=SC2317 # functions defined in tests are called through sem_run
# sem_run [-w SECONDS] [-E CODE] NAME COMMAND [ARG...]: hold one count of NAME exactly
# while COMMAND runs, however it ends. Returns COMMAND's status; CODE (default 1) when no
# count came in time; 125 when sem_run itself fails; 126/127 when COMMAND can't be
# executed / isn't found; 128+N when signal N ended the wait. COMMAND's stdout and stderr
# pass through; sem_run adds one stderr line only when it fails itself.

load test_helper

# holder_of NAME: the pid of the `semctl-helper hold` holding or waiting for NAME. The
# holder leaves the shell's process tree (see docs/DESIGN.md), so it is found by name.
holder_of() {
	local i pid=''
	for ((i = 0; i < 500; i++)); do
		pid=$(pgrep -f -- "semctl-helper hold (-w [^ ]+ )?-- $1\$") && break
		sleep 0.01
	done
	[[ -n $pid ]] || fail "no holder for $1"
	echo "$pid"
}

# alive PID: PID exists and is not a zombie.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# session SCRIPT ARG...: run `bash SCRIPT ARG...` in a session and process group of its
# own, with SIGINT at its default as in a terminal's foreground job (a non-interactive
# shell starts its background jobs with SIGINT ignored). Its pid, also its group's id,
# is in $!; Ctrl-C is `kill -INT -- -$!`.
session() {
	perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!"' -- setsid bash "$@" 3>&- &
}

# script NAME: write stdin to $D/NAME, a script that takes $D as $1 and sources sem.sh.
script() {
	{
		echo 'D=$1'
		echo 'source "$REPO_ROOT/sh/sem.sh"'
		cat
	} >"$D/$1"
}

# ran: a function COMMAND that leaves a mark.
ran() {
	: >"$D/ran"
}

@test "an external program runs with its args; its stdout, stderr and status pass through" {
	sem_init "$D/s" 3
	run --separate-stderr sem_run "$D/s" sh -c 'echo "out $1 $2 $("$3" peek "$4")"; echo "err" >&2; exit 42' \
		_ "a b" c "$HELPER" "$D/s"
	assert_failure 42
	assert_output "out a b c 2"
	assert_equal "$stderr" "err"
	assert_equal "$(val "$D/s")" 3
	local code
	for code in 0 3 42 255; do
		run --separate-stderr sem_run "$D/s" sh -c 'exit "$1"' _ "$code"
		assert_equal "$status" "$code"
		assert_silent
	done
	assert_equal "$(val "$D/s")" 3
}

@test "a function runs in the calling shell: gets its args, sees and sets its variables" {
	sem_init "$D/s" 3
	local seen='' args='' inside=''
	IN=caller-value
	f() {
		seen=$IN
		args="$#:$1:$2"
		inside=$(val "$D/s")
		OUT=set-by-f
		echo "f out"
		echo "f err" >&2
		return 3
	}
	local rc=0
	sem_run "$D/s" f "a b" c >"$D/out" 2>"$D/err" || rc=$?
	assert_equal "$rc" 3
	assert_equal "$seen" caller-value
	assert_equal "$args" "2:a b:c"
	assert_equal "$inside" 2
	assert_equal "$OUT" set-by-f
	assert_equal "$(cat "$D/out")" "f out"
	assert_equal "$(cat "$D/err")" "f err"
	assert_equal "$(val "$D/s")" 3
}

@test "a function's status, stdout and stderr pass through (run)" {
	sem_init "$D/s" 1
	pass() {
		echo "g $1 $(val "$D/s")"
		echo "g err" >&2
		return "$1"
	}
	local code
	for code in 0 3 42; do
		run --separate-stderr sem_run "$D/s" pass "$code"
		assert_equal "$status" "$code"
		assert_output "g $code 0"
		assert_equal "$stderr" "g err"
		assert_equal "$(val "$D/s")" 1
	done
}

@test "a builtin runs in the calling shell: cd changes its directory, read sets a variable" {
	sem_init "$D/s" 2
	local x='' rc=0
	mkdir "$D/here"
	sem_run "$D/s" cd "$D/here" || rc=$?
	assert_equal "$rc" 0
	assert_equal "$PWD" "$D/here"
	sem_run "$D/s" read -r x <<<hi || rc=$?
	assert_equal "$rc" 0
	assert_equal "$x" hi
	sem_run "$D/s" printf -v x '%s-%s' held "$(val "$D/s")" || rc=$?
	assert_equal "$rc" 0
	assert_equal "$x" held-2
	rc=0
	sem_run "$D/s" false || rc=$?
	assert_equal "$rc" 1
	assert_equal "$(val "$D/s")" 2
}

@test "return (even builtin return) gives its status and the count back; break and continue are refused" {
	sem_init "$D/s" 1
	via_return() {
		sem_run "$D/s" return 7
	}
	via_builtin() {
		sem_run "$D/s" builtin return 4
	}
	local rc=0 word
	via_return || rc=$?
	assert_equal "$rc" 7
	assert_equal "$(val "$D/s")" 1
	rc=0
	via_builtin || rc=$?
	assert_equal "$rc" 4
	assert_equal "$(val "$D/s")" 1
	for word in break continue; do
		run --separate-stderr sem_run "$D/s" "$word"
		assert_failure 125
		assert_one_line_stderr
	done
	assert_equal "$(val "$D/s")" 1
}

@test "a function that runs a bare wait doesn't wait for the holder" {
	sem_init "$D/s" 1
	par() {
		sleep 0.2 &
		wait
		echo "par done"
	}
	run --separate-stderr timeout 10 bash -c 'source "$REPO_ROOT/sh/sem.sh"; par() { sleep 0.2 & wait; echo "par done"; }; sem_run "$1" par; sem_run "$1" wait; echo "rc=$?"' _ "$D/s"
	assert_success
	assert_output $'par done\nrc=0'
	assert_equal "$(val "$D/s")" 1
}

@test "a program starts with the caller's signal mask and dies of SIGTERM as usual" {
	sem_init "$D/s" 1
	run --separate-stderr sem_run "$D/s" grep SigBlk /proc/self/status
	assert_success
	assert_output "$(grep SigBlk /proc/self/status)"
	run --separate-stderr sem_run "$D/s" sh -c 'kill -TERM $$; echo survived'
	assert_failure 143
	assert_output ""
	assert_equal "$(val "$D/s")" 1
}

@test "TMOUT in the caller doesn't cut the wait short; closed stderr and the caller's fd 9 work" {
	sem_init "$D/s" 0
	( sleep 1.5; "$HELPER" post "$D/s" ) &
	run --separate-stderr bash -c 'TMOUT=1; source "$REPO_ROOT/sh/sem.sh"; f() { echo ran; }; sem_run "$1" f' _ "$D/s"
	assert_success
	assert_output ran
	run --separate-stderr bash -c 'source "$REPO_ROOT/sh/sem.sh"; f() { echo ran; }; sem_run "$1" f 2>&-; sem_run "$1" /bin/echo prog 2>&-' _ "$D/s"
	assert_success
	assert_output $'ran\nprog'
	run --separate-stderr bash -c 'source "$REPO_ROOT/sh/sem.sh"; exec 9>"$2"; sem_run "$1" sh -c "echo via-9 >&9"; cat "$2"' _ "$D/s" "$D/log"
	assert_success
	assert_output via-9
	assert_equal "$(val "$D/s")" 1
}

@test "the count is held exactly while COMMAND runs, on both paths" {
	sem_init "$D/s" 2
	# An external COMMAND holds it itself; peek from inside sees N-1.
	run --separate-stderr sem_run "$D/s" "$HELPER" peek "$D/s"
	assert_success
	assert_output 1
	assert_equal "$stderr" ""
	assert_equal "$(val "$D/s")" 2
	# A function: from inside, and from outside while it runs (it waits for a file).
	h() {
		val "$D/s" >"$D/inside.tmp"
		mv "$D/inside.tmp" "$D/inside"
		while [[ ! -e $D/go ]]; do sleep 0.02; done
	}
	bg_run "$D/r" "$D/s" h
	wait_for_file "$D/inside"
	assert_equal "$(cat "$D/inside")" 1
	sleep 0.2
	assert_equal "$(val "$D/s")" 1
	touch "$D/go"
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 0
	assert_equal "$(val "$D/s")" 2
	assert_waiter_silent "$D/r"
}

@test "sem_run waits for a count, then runs COMMAND as soon as one is posted" {
	sem_init "$D/s" 0
	bg_run "$D/r" "$D/s" ran
	wait_for_waiters "$D/s" 1
	sleep 0.2
	assert [ ! -e "$D/ran" ]
	local t0
	t0=$(now)
	sem_post "$D/s"
	await "$D/r"
	local rc start end
	read -r rc start end <"$D/r"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 1
	assert [ -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 1
}

# assert_no_count_in_time CODE MIN MAX ARGS...: on both paths (the function `ran` and the
# program `touch $D/ran`), `sem_run ARGS COMMAND` returns CODE after MIN to MAX seconds
# with nothing on stdout, and COMMAND does not run.
assert_no_count_in_time() {
	local code=$1 lo=$2 hi=$3 t0 t1 cmd
	shift 3
	for cmd in ran "touch $D/ran"; do
		t0=$(now)
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run "$@" $cmd
		t1=$(now)
		assert_failure "$code"
		assert_equal "$output" ""
		assert_elapsed "$t0" "$t1" "$lo" "$hi"
		assert [ ! -e "$D/ran" ]
	done
}

@test "-w 0 tries once: CODE (default 1) at once, COMMAND not run, count left alone" {
	sem_init "$D/z" 0
	assert_no_count_in_time 1 0 1 -w 0 "$D/z"
	assert_equal "$(val "$D/z")" 0
	assert_equal "$(waiters "$D/z")" 0
	# With a count there, -w 0 takes it.
	sem_post "$D/z"
	run --separate-stderr sem_run -w 0 "$D/z" "$HELPER" peek "$D/z"
	assert_success
	assert_output 0
	run --separate-stderr sem_run -w0 "$D/z" ran
	assert_success
	assert [ -e "$D/ran" ]
	assert_equal "$(val "$D/z")" 1
}

@test "-w 0.5 times out after about 0.5 s on both paths, returning CODE, COMMAND not run" {
	sem_init "$D/z" 0
	assert_no_count_in_time 9 0.4 2 -w 0.5 -E 9 "$D/z"
	assert_equal "$(val "$D/z")" 0
	assert_equal "$(waiters "$D/z")" 0
}

@test "a timeout is silent on stderr for an external COMMAND (as flock -w)" {
	sem_init "$D/z" 0
	run --separate-stderr sem_run -w 0 "$D/z" touch "$D/ran"
	assert_failure 1
	assert_silent
	run --separate-stderr sem_run -w 0.1 "$D/z" touch "$D/ran"
	assert_failure 1
	assert_silent
}

@test "a timeout is silent on stderr for a function or builtin too" {
	sem_init "$D/z" 0
	run --separate-stderr sem_run -w 0 "$D/z" ran
	assert_failure 1
	assert_silent
	run --separate-stderr sem_run -w 0.1 "$D/z" true
	assert_failure 1
	assert_silent
}

@test "option forms: -wS, -ES, -w S -E C, --, and -E 0" {
	sem_init "$D/z" 0
	run --separate-stderr sem_run -w0.2 -E7 "$D/z" ran
	assert_failure 7
	run --separate-stderr sem_run -w0.2 -E7 "$D/z" touch "$D/ran"
	assert_failure 7
	run --separate-stderr sem_run -w 0.2 -E 8 -- "$D/z" ran
	assert_failure 8
	run --separate-stderr sem_run -E 8 -w 0.2 -- "$D/z" touch "$D/ran"
	assert_failure 8
	run --separate-stderr sem_run -E 0 -w .1 "$D/z" touch "$D/ran"
	assert_success
	assert_equal "$output" ""
	run --separate-stderr sem_run -E 255 -w 0 "$D/z" ran
	assert_failure 255
	assert [ ! -e "$D/ran" ]
	# -- also lets a NAME start with '-', under $HOME.
	sem_init "$HOME/-n" 1
	run --separate-stderr sem_run -w 1 -- -n "$HELPER" peek "$HOME/-n"
	assert_success
	assert_output 0
	run --separate-stderr sem_run -- -n ran
	assert_success
	assert [ -e "$D/ran" ]
	assert_equal "$(val "$HOME/-n")" 1
}

@test "a bad -E (256, -1, abc, empty, missing) is 125 and one line, COMMAND not run" {
	sem_init "$D/s" 1
	local e cmd
	for cmd in ran "touch $D/ran"; do
		for e in 256 -1 abc '' 1x 0x1 1000; do
			# shellcheck disable=SC2086 # split "touch FILE" on purpose
			run --separate-stderr sem_run -E "$e" "$D/s" $cmd
			assert_failure 125
			assert_one_line_stderr
		done
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run -E256 "$D/s" $cmd
		assert_failure 125
		assert_one_line_stderr
	done
	run --separate-stderr sem_run "$D/s" ran -E
	assert [ -e "$D/ran" ]
	rm "$D/ran"
	run --separate-stderr sem_run -E
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run -w
	assert_failure 125
	assert_one_line_stderr
	assert [ ! -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 1
}

@test "a bad -w is 125 and one line, COMMAND not run" {
	sem_init "$D/s" 1
	local w cmd
	for cmd in ran "touch $D/ran"; do
		for w in abc 1s nan -x; do
			# shellcheck disable=SC2086 # split "touch FILE" on purpose
			run --separate-stderr sem_run -w "$w" "$D/s" $cmd
			assert_failure 125
			assert_one_line_stderr
		done
	done
	assert [ ! -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 1
}

@test "an empty -w is 125 and one line, not a wait without limit" {
	sem_init "$D/z" 0
	local cmd
	for cmd in ran "touch $D/ran"; do
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr timeout 5 bash -c 'source "$REPO_ROOT/sh/sem.sh"; ran() { :; }; sem_run -w "" "$1" $2' _ "$D/z" "$cmd"
		assert_failure 125
		assert_one_line_stderr
	done
	assert [ ! -e "$D/ran" ]
}

@test "an unknown option, or a missing NAME or COMMAND, is 125 and one line" {
	sem_init "$D/s" 1
	run --separate-stderr sem_run -x "$D/s" ran
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run --wait 1 "$D/s" ran
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run "$D/s"
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run -w 1 -- "$D/s"
	assert_failure 125
	assert_one_line_stderr
	assert [ ! -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 1
}

@test "no such semaphore is 125 and one stderr line naming it, on both paths" {
	local cmd
	for cmd in ran "touch $D/ran"; do
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run "$D/missing" $cmd
		assert_failure 125
		assert_one_line_stderr
		assert_equal "$(grep -c "$D/missing" <<<"$stderr")" 1
	done
	assert [ ! -e "$D/ran" ]
	assert [ ! -e "$D/missing" ]
	# A stale record is no semaphore either.
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	for cmd in ran "touch $D/ran"; do
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run "$D/s" $cmd
		assert_failure 125
		assert_one_line_stderr
	done
	assert [ ! -e "$D/ran" ]
}

@test "a COMMAND that isn't found is 127, one that can't be executed 126; nothing taken" {
	sem_init "$D/s" 1
	run -127 --separate-stderr sem_run "$D/s" no-such-command-here
	assert_failure 127
	assert_one_line_stderr
	run -127 --separate-stderr sem_run "$D/s" "$D/no-such-file"
	assert_failure 127
	assert_one_line_stderr
	printf '#!/bin/sh\necho hi\n' >"$D/noexec"
	chmod 644 "$D/noexec"
	run --separate-stderr sem_run "$D/s" "$D/noexec"
	assert_failure 126
	assert_one_line_stderr
	run --separate-stderr sem_run "$D/s" "$D"
	assert_failure 126
	assert_one_line_stderr
	assert_equal "$(val "$D/s")" 1
	# Even when no count is free, the COMMAND is checked first.
	sem_init "$D/z" 0
	run -127 --separate-stderr sem_run -w 0.1 "$D/z" no-such-command-here
	assert_failure 127
}

@test "kill -9 of an external COMMAND: the count comes back at once, sem_run returns 137" {
	sem_init "$D/s" 2
	bg_run "$D/r" "$D/s" sh -c 'echo $$ >"$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30' _ "$D/pid"
	wait_for_file "$D/pid"
	assert_equal "$(val "$D/s")" 1
	local t0
	t0=$(now)
	kill -9 "$(cat "$D/pid")"
	wait_for_value "$D/s" 2 2
	assert_elapsed "$t0" "$(now)" 0 1
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 137
	# bash's "Killed" line is kept off stderr.
	assert_waiter_silent "$D/r"
}

@test "kill -9 of the calling shell while a function runs: its count comes back at once" {
	sem_init "$D/s" 2
	script run <<'EOF'
f() {
	: >"$D/in"
	while :; do :; done
}
sem_run "$D/s" f
EOF
	bg bash "$D/run" "$D"
	local pid=$!
	wait_for_file "$D/in"
	assert_equal "$(val "$D/s")" 1
	local t0
	t0=$(now)
	kill -9 "$pid"
	wait_for_value "$D/s" 2 3
	assert_elapsed "$t0" "$(now)" 0 1
}

@test "kill -9 of the calling shell: a function's count stays held while the processes it started live" {
	sem_init "$D/s" 2
	script run <<'EOF'
f() {
	# A child that outlives the shell, as a command of the function still running would.
	sleep 30 &
	echo $! >"$D/child"
	: >"$D/in"
	while [[ ! -e $D/never ]]; do sleep 0.05; done
}
sem_run "$D/s" f
EOF
	bg bash "$D/run" "$D"
	local pid=$!
	wait_for_file "$D/in"
	assert_equal "$(val "$D/s")" 1
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	local child
	child=$(cat "$D/child")
	sleep 0.5
	alive "$child" || fail "the function's child died with the shell; the test proves nothing"
	# The function never returned and its child runs on: the slot is still taken.
	assert_equal "$(val "$D/s")" 1
	local t0
	t0=$(now)
	kill "$child"
	wait_for_value "$D/s" 2 3
	assert_elapsed "$t0" "$(now)" 0 1
}

@test "kill -9 of the calling shell while an external COMMAND runs: it keeps its count until it ends" {
	sem_init "$D/s" 2
	script run <<'EOF'
sem_run "$D/s" sh -c 'echo $$ >"$1.tmp"; mv "$1.tmp" "$1"
	while [ ! -e "$2" ]; do sleep 0.05; done
	"$4" peek "$5" >"$3.tmp"; mv "$3.tmp" "$3"' _ "$D/cmd" "$D/go" "$D/done" "$HELPER" "$D/s"
EOF
	bg bash "$D/run" "$D"
	local pid=$!
	wait_for_file "$D/cmd"
	assert_equal "$(val "$D/s")" 1
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	local cmd
	cmd=$(cat "$D/cmd")
	sleep 0.3
	alive "$cmd" || fail "the COMMAND died with the shell"
	assert_equal "$(val "$D/s")" 1
	touch "$D/go"
	wait_for_file "$D/done"
	# Until its very end the COMMAND held its count.
	assert_equal "$(cat "$D/done")" 1
	wait_for_value "$D/s" 2 3
}

@test "kill -9 of the holder while a function runs: count back, one warning, function's status" {
	sem_init "$D/s" 2
	script run <<'EOF'
f() {
	: >"$D/in"
	while [[ ! -e $D/go ]]; do sleep 0.02; done
	echo "f done"
	return 5
}
rc=0
sem_run "$D/s" f || rc=$?
echo "rc=$rc"
EOF
	bg bash "$D/run" "$D" >"$D/out" 2>"$D/err"
	local pid=$!
	wait_for_file "$D/in"
	assert_equal "$(val "$D/s")" 1
	local holder
	holder=$(holder_of "$D/s")
	kill -9 "$holder"
	wait_for_value "$D/s" 2 2
	touch "$D/go"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/out")" $'f done\nrc=5'
	local err
	err=$(cat "$D/err")
	[[ -n $err && $err != *$'\n'* ]] || fail "expected one warning line on stderr, got: '$err'"
	[[ $err == sem_run:* ]] || fail "the warning does not start with 'sem_run:': $err"
	assert_equal "$(val "$D/s")" 2
}

@test "kill -9 of a waiting 'semctl-helper run': 137, nothing taken, COMMAND not run" {
	sem_init "$D/s" 0
	bg_run "$D/r" "$D/s" touch "$D/ran"
	local job=$!
	wait_for_waiters "$D/s" 1
	kill -9 "$(helper_of "$job")"
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 137
	assert_waiter_silent "$D/r"
	assert_equal "$(waiters "$D/s")" 0
	assert_equal "$(val "$D/s")" 0
	sem_post "$D/s"
	sleep 0.2
	assert_equal "$(val "$D/s")" 1
	assert [ ! -e "$D/ran" ]
}

@test "kill -9 of a waiting 'semctl-helper hold': 125 and one line, nothing taken, function not run" {
	sem_init "$D/s" 0
	bg_run "$D/r" "$D/s" ran
	local job=$!
	wait_for_waiters "$D/s" 1
	kill -9 "$(holder_of "$D/s")"
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 125
	assert_equal "$(cat "$D/r.stdout")" ""
	assert_equal "$(waiters "$D/s")" 0
	assert_equal "$(val "$D/s")" 0
	sem_post "$D/s"
	sleep 0.2
	assert_equal "$(val "$D/s")" 1
	assert [ ! -e "$D/ran" ]
}

@test "Ctrl-C while waiting: the wait stops, nothing is taken, COMMAND never runs (both paths)" {
	local kind
	for kind in program function; do
		sem_init "$D/s$kind" 0
		script "run$kind" <<EOF
ran() { : >"\$D/ran$kind"; }
if [[ $kind == function ]]; then sem_run "\$D/s$kind" ran; else sem_run "\$D/s$kind" touch "\$D/ran$kind"; fi
echo "after=\$?" >"\$D/after$kind"
EOF
		session "$D/run$kind" "$D"
		local pid=$!
		wait_for_waiters "$D/s$kind" 1
		assert_equal "$(ps -o pgid= -p "$pid" | tr -d ' ')" "$pid"
		kill -INT -- "-$pid"
		reap "$pid"
		# The shell itself stops, as at a terminal.
		assert_equal "$status" 130
		wait_for_waiters "$D/s$kind" 0 3
		assert_equal "$(val "$D/s$kind")" 0
		sem_post "$D/s$kind"
		sleep 0.2
		assert_equal "$(val "$D/s$kind")" 1
		assert [ ! -e "$D/ran$kind" ]
		assert [ ! -e "$D/after$kind" ]
	done
}

@test "SIGTERM to the script only while waiting: the wait stops, nothing taken (both paths)" {
	local kind
	for kind in program function; do
		sem_init "$D/s$kind" 0
		script "run$kind" <<EOF
ran() { : >"\$D/ran$kind"; }
if [[ $kind == function ]]; then sem_run "\$D/s$kind" ran; else sem_run "\$D/s$kind" touch "\$D/ran$kind"; fi
EOF
		session "$D/run$kind" "$D"
		local pid=$!
		wait_for_waiters "$D/s$kind" 1
		kill -TERM "$pid"
		reap "$pid"
		assert_equal "$status" 143
		wait_for_waiters "$D/s$kind" 0 3
		assert_equal "$(val "$D/s$kind")" 0
		sem_post "$D/s$kind"
		sleep 0.2
		assert_equal "$(val "$D/s$kind")" 1
		assert [ ! -e "$D/ran$kind" ]
	done
}

@test "a shell trapping INT keeps the slot through Ctrl-C until its function ends" {
	sem_init "$D/s" 1
	script run <<'EOF'
trap 'echo got >>"$D/trapped"' INT
f() {
	: >"$D/in"
	while [[ ! -e $D/go ]]; do sleep 0.02; done
	"$HELPER" peek "$D/s" >"$D/end"
	return 6
}
rc=0
sem_run "$D/s" f || rc=$?
echo "rc=$rc" >"$D/rc"
EOF
	session "$D/run" "$D"
	local pid=$!
	wait_for_file "$D/in"
	assert_equal "$(val "$D/s")" 0
	local holder
	holder=$(helper_of "$pid")
	kill -INT -- "-$pid"
	wait_for_file "$D/trapped"
	sleep 0.3
	alive "$holder" || fail "Ctrl-C ended the holder while the function ran"
	assert_equal "$(val "$D/s")" 0
	touch "$D/go"
	wait_for_file "$D/rc"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/end")" 0
	assert_equal "$(cat "$D/rc")" rc=6
	assert_equal "$(val "$D/s")" 1
}

# interactive: run the Python script on stdin, which drives `bash -i` on a pseudo-terminal
# through bats/pty_shell.py (its rc file $D/rc: the prompt, sem.sh, and $D/functions), with
# D, HELPER and REPO_ROOT in its environment.
interactive() {
	{
		echo "PS1='PROMPT> '"
		echo 'source "$REPO_ROOT/sh/sem.sh"'
		cat "$D/functions"
	} >"$D/rc"
	D=$D HELPER=$HELPER REPO_ROOT=$REPO_ROOT \
		python3 -c "import sys; sys.path.insert(0, '$BATS_TEST_DIRNAME'); exec(sys.stdin.read())"
}

@test "interactive Ctrl-C in a function: the count is back at once, the prompt works, posts add no more" {
	sem_init "$D/s" 1
	cat >"$D/functions" <<'EOF'
f() { : >"$D/in"; sleep 30; echo "f goes on"; }
EOF
	run --separate-stderr interactive <<'EOF'
import os, subprocess, time
from pty_shell import Shell, await_waiter
D, H = os.environ['D'], os.environ['HELPER']
val = lambda: int(subprocess.check_output([H, 'peek', D + '/s']))
sh = Shell(D + '/rc')
sh.run('sem_run "$D/s" f')
while not os.path.exists(D + '/in'):
    time.sleep(0.01)
assert val() == 0, val()
sh.ctrl_c()
t0 = time.monotonic()
while val() != 1:
    assert time.monotonic() - t0 < 2, 'the count did not come back'
    time.sleep(0.002)
print('back after %.1f ms' % ((time.monotonic() - t0) * 1000))
sh.prompt()
sh.run('echo "rc=$?"')
sh.expect('rc=130')
sh.prompt()
# The slot works again, and a post followed by exit can't raise the value past 1 + 1.
sh.run('sem_run "$D/s" true && echo again')
sh.expect('again')
sh.prompt()
sh.run('sem_post "$D/s"')
sh.prompt()
assert 'f goes on' not in sh.seen
print('exit', sh.close())
time.sleep(0.3)
print('value', val())
EOF
	assert_success
	echo "# $output" >&3
	assert_line --index 2 'value 2'
	local ms
	ms=$(sed -n 's/^back after \([0-9.]*\) ms$/\1/p' <<<"$output")
	# The issue asks for 100 ms; allow a loaded machine some slack.
	awk -v m="$ms" 'BEGIN { exit !(m < 500) }' || fail "the count came back after $ms ms"
	assert_equal "$(val "$D/s")" 2
}

@test "interactive Ctrl-C while sem_run waits: nothing taken, the function never runs" {
	sem_init "$D/s" 0
	cat >"$D/functions" <<'EOF'
f() { : >"$D/ran"; }
EOF
	run --separate-stderr interactive <<'EOF'
import os, subprocess, time
from pty_shell import Shell, await_waiter
D, H = os.environ['D'], os.environ['HELPER']
sh = Shell(D + '/rc')
sh.run('sem_run "$D/s" f')
await_waiter(H, D + '/s')
sh.ctrl_c()
sh.prompt()
sh.run('echo "rc=$?"')
sh.expect('rc=130')
sh.prompt()
print('exit', sh.close())
EOF
	assert_success
	sleep 0.2
	assert_equal "$(waiters "$D/s")" 0
	sem_post "$D/s"
	sleep 0.2
	assert_equal "$(val "$D/s")" 1
	assert [ ! -e "$D/ran" ]
	run pgrep -f -- "semctl-helper hold .*$D/s"
	assert_failure
}

@test "interactive Ctrl-C in a function that traps INT and carries on: the slot stays held" {
	sem_init "$D/s" 1
	cat >"$D/functions" <<'EOF'
g() {
	trap 'echo caught' INT
	: >"$D/in"
	sleep 30
	"$HELPER" peek "$D/s" >"$D/during"
	trap - INT
	echo "g done"
}
EOF
	run --separate-stderr interactive <<'EOF'
import os, subprocess, time
from pty_shell import Shell, await_waiter
D, H = os.environ['D'], os.environ['HELPER']
sh = Shell(D + '/rc')
sh.run('sem_run "$D/s" g')
while not os.path.exists(D + '/in'):
    time.sleep(0.01)
sh.ctrl_c()
sh.expect('g done')
sh.prompt()
print('exit', sh.close())
EOF
	assert_success
	assert_equal "$(cat "$D/during")" 0
	assert_equal "$(val "$D/s")" 1
}

@test "sem_run --help prints the usage on stdout and returns 0" {
	run --separate-stderr sem_run --help
	assert_success
	assert_line --index 0 'usage: sem_run [OPTIONS] NAME COMMAND [ARG...]'
	assert_output --partial '--init VALUE'
	assert_output --partial '-n COUNT'
	assert_equal "$stderr" ""
	run --separate-stderr sem_run -h
	assert_success
}

@test "sem_run's errors speak of sem_run, not of the helper's subcommands (both paths)" {
	sem_init "$D/s" 1
	local cmd
	for cmd in ran /bin/true; do
		run --separate-stderr sem_run -w 5m "$D/s" "$cmd"
		assert_failure 125
		assert_one_line_stderr
		assert_equal "$stderr" 'sem_run: invalid timeout "5m": expected seconds such as 5, 0.25 or -1'
		run --separate-stderr sem_run "$D/missing" "$cmd"
		assert_failure 125
		assert_one_line_stderr
		[[ $stderr == "sem_run: $D/missing: "* ]] || fail "unexpected message: $stderr"
	done
	assert [ ! -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 1
}

@test "sem_run -n COUNT holds COUNT counts on both paths; more than the semaphore holds is refused at once" {
	sem_init "$D/s" 4
	f() { "$HELPER" peek "$D/s"; }
	run --separate-stderr sem_run -n 3 "$D/s" f
	assert_success
	assert_output 1
	run --separate-stderr sem_run -n3 "$D/s" "$HELPER" peek "$D/s"
	assert_success
	assert_output 1
	assert_equal "$(val "$D/s")" 4
	local t0
	t0=$(now)
	run --separate-stderr sem_run -n 5 "$D/s" f
	assert_failure 125
	assert_one_line_stderr
	[[ $stderr == sem_run:* ]] || fail "unexpected message: $stderr"
	run --separate-stderr sem_run -n 5 "$D/s" /bin/true
	assert_failure 125
	assert_one_line_stderr
	assert_elapsed "$t0" "$(now)" 0 3
	assert_equal "$(val "$D/s")" 4
}

@test "sem_run -n: 3 workers taking 2 of 4 never hold more than 4, and a killed one gives both back" {
	sem_init "$D/s" 4
	: >"$D/log"
	script work <<'EOF'
f() {
	echo "+2 $BASHPID" >>"$D/log"
	sleep 0.05
	echo "-2 $BASHPID" >>"$D/log"
}
for i in 1 2 3 4 5; do sem_run -n 2 "$D/s" f; done
EOF
	local pids=() i
	for i in 1 2 3; do
		bg bash "$D/work" "$D"
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		reap "$i"
		assert_success
	done
	run awk '{ n += $1; if (n > max) max = n } END { print max, n, NR }' "$D/log"
	assert_output "4 0 30"
	# kill -9 of a program holding two: both come back at once.
	bg sem_run -n 2 "$D/s" sleep 30
	wait_for_value "$D/s" 2 5
	pkill -9 -f "^sleep 30$"
	wait_for_value "$D/s" 4 2
}

@test "sem_run --init creates NAME on first use with --mode; exactly one of many racers creates it" {
	local i pids=()
	for i in 1 2 3 4 5 6; do
		bg sem_run --init 2 --mode 0666 "$D/s" sh -c 'echo x >>"$1"' _ "$D/ran"
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		reap "$i"
		assert_success
	done
	assert_equal "$(wc -l <"$D/ran")" 6
	assert_equal "$(val "$D/s")" 2
	run "$HELPER" status --json "$D/s"
	assert_output --partial '"mode":"0666"'
	# An existing NAME is used as it is: VALUE and MODE don't change it.
	run sem_run --init 5 --mode 0600 "$D/s" "$HELPER" peek "$D/s"
	assert_success
	assert_output 1
	run "$HELPER" status --json "$D/s"
	assert_output --partial '"mode":"0666"'
}

@test "8 parallel sem_run on 3 slots: at most 3 at once, all 8 ran, value back to 3" {
	sem_init "$D/s" 3
	: >"$D/log"
	# Each logs its start once it holds a slot, lets the first three meet, then its end
	# before it lets go: so the logged overlap can only understate the real one.
	work() {
		local k
		echo "S $2" >>"$1"
		for ((k = 0; k < 100; k++)); do
			(($(grep -c '^S' "$1") >= 3)) && break
			sleep 0.02
		done
		sleep 0.1
		echo "E $2" >>"$1"
	}
	local body='echo "S $2" >>"$1"; k=0
		while [ "$(grep -c "^S" "$1")" -lt 3 ] && [ $k -lt 100 ]; do sleep 0.02; k=$((k+1)); done
		sleep 0.1; echo "E $2" >>"$1"'
	local i
	for i in 1 2 3 4 5 6 7 8; do
		if ((i % 2)); then
			bg_run "$D/r$i" "$D/s" work "$D/log" "$i"
		else
			bg_run "$D/r$i" "$D/s" sh -c "$body" _ "$D/log" "$i"
		fi
	done
	for i in 1 2 3 4 5 6 7 8; do
		await "$D/r$i" 20
		assert_equal "$(rc_of "$D/r$i")" 0
	done
	assert_equal "$(grep -c '^S' "$D/log")" 8
	assert_equal "$(grep -c '^E' "$D/log")" 8
	local most
	most=$(awk '$1 == "S" { c++; if (c > m) m = c } $1 == "E" { c-- } END { print m + 0 }' "$D/log")
	assert_equal "$most" 3
	assert_equal "$(val "$D/s")" 3
	assert_equal "$(waiters "$D/s")" 0
}

@test "sem_run works in a caller running set -euo pipefail" {
	sem_init "$D/s" 2
	sem_init "$D/z" 0
	script run <<'EOF'
set -euo pipefail
f() { X=$1; }
sem_run "$D/s" f val
echo "X=$X"
sem_run "$D/s" true
sem_run "$D/s" cd /
echo "pwd=$PWD"
rc=0
sem_run "$D/s" sh -c 'exit 3' || rc=$?
echo "program=$rc"
rc=0
sem_run -w 0 "$D/z" f x || rc=$?
echo "timeout=$rc"
rc=0
sem_run -w 0 "$D/missing" /bin/true 2>/dev/null || rc=$?
echo "missing=$rc"
echo "value=$(sem_peek "$D/s")"
g() { return 4; }
sem_run "$D/s" g
echo "not reached"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_failure 4
	assert_output $'X=val\npwd=/\nprogram=3\ntimeout=1\nmissing=125\nvalue=2'
	assert_equal "$stderr" ""
	assert_equal "$(val "$D/s")" 2
}

@test "under set -e a failing command in a function run by sem_run ends the shell, count back" {
	sem_init "$D/s" 2
	script run <<'EOF'
set -e
f() { false; echo "after false"; }
sem_run "$D/s" f
echo "not reached"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_failure 1
	assert_output ""
	assert_equal "$(val "$D/s")" 2
}

@test "sem_run leaks no descriptors and changes no option or trap of the caller" {
	sem_init "$D/s" 2
	sem_init "$D/z" 0
	script run <<'EOF'
state() { ls /proc/$$/fd | sort | tr '\n' ' '; echo; set +o; shopt -p; trap -p; echo "IFS=$(printf %q "$IFS")"; }
trap 'echo term' TERM
set -u
shopt -s nullglob
f() { :; }
before=$(state)
sem_run "$D/s" f
sem_run "$D/s" /bin/true
sem_run "$D/s" :
sem_run -w 0 "$D/z" f || :
sem_run -w 0 "$D/z" /bin/true || :
sem_run "$D/missing" f 2>/dev/null || :
sem_run "$D/missing" /bin/true 2>/dev/null || :
sem_run -x "$D/s" f 2>/dev/null || :
sem_run "$D/s" no-such-command 2>/dev/null || :
after=$(state)
if [[ $before == "$after" ]]; then echo same; else diff <(echo "$before") <(echo "$after"); fi
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output same
	assert_equal "$(val "$D/s")" 2
}

@test "semctl-helper run directly: the program's status, CODE on timeout, 125, 126, 127" {
	sem_init "$D/s" 2
	sem_init "$D/z" 0
	run --separate-stderr "$HELPER" run "$D/s" -- sh -c '"$1" peek "$2"; echo err >&2; exit 42' _ "$HELPER" "$D/s"
	assert_failure 42
	assert_output 1
	assert_equal "$stderr" err
	assert_equal "$(val "$D/s")" 2
	run --separate-stderr "$HELPER" run -w 0 -E 9 "$D/z" -- touch "$D/ran"
	assert_failure 9
	assert_silent
	run --separate-stderr "$HELPER" run -w 0.2 "$D/z" -- touch "$D/ran"
	assert_failure 1
	assert_silent
	assert [ ! -e "$D/ran" ]
	run --separate-stderr "$HELPER" run "$D/missing" -- true
	assert_failure 125
	assert_one_line_stderr
	[[ $stderr == *"$D/missing"* ]] || fail "the message does not name the semaphore: $stderr"
	local bad
	for bad in "-E 256" "-E -1" "-E abc" "-w abc"; do
		# shellcheck disable=SC2086 # split the option and its value on purpose
		run --separate-stderr "$HELPER" run $bad "$D/s" -- touch "$D/ran"
		assert_failure 125
		assert_one_line_stderr
	done
	run --separate-stderr "$HELPER" run "$D/s"
	assert_failure 125
	assert_one_line_stderr
	run -127 --separate-stderr "$HELPER" run "$D/s" -- no-such-command-here
	assert_failure 127
	assert_one_line_stderr
	printf '#!/bin/sh\n' >"$D/noexec"
	chmod 644 "$D/noexec"
	run --separate-stderr "$HELPER" run "$D/s" -- "$D/noexec"
	assert_failure 126
	assert_one_line_stderr
	assert [ ! -e "$D/ran" ]
	assert_equal "$(val "$D/s")" 2
	assert_equal "$(val "$D/z")" 0
}
