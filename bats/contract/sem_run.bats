#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $1, $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# shellcheck disable=SC2317 # functions defined in tests are called through sem_run
# sem_run [-w SECONDS] [-E CODE] [-n COUNT] [--init VALUE ...] NAME COMMAND [ARG...], the
# contract every kind keeps: holds a count of NAME exactly while COMMAND (a program, a
# function or a builtin) runs, however it ends, kill -9 included. Returns COMMAND's
# status; CODE (default 1) when no count came in time; 125 when sem_run itself fails;
# 126/127 when COMMAND can't be executed / isn't found. COMMAND's stdout and stderr pass
# through; sem_run adds one stderr line only when it fails itself.

load ../test_helper
load kind

# script NAME: write stdin to $D/NAME, a script that takes $D as $1 and the semaphore's
# name as $2 (S), and sources sem.sh.
script() {
	{
		echo 'D=$1 S=$2'
		echo 'source "$REPO_ROOT/sh/sem.sh"'
		cat
	} >"$D/$1"
}

# ran: a function COMMAND that leaves a mark.
ran() {
	: >"$D/ran"
}

@test "an external program runs with its args; its stdout, stderr and status pass through" {
	local s code
	s=$(sem_name s)
	sem_init "$s" 3
	run --separate-stderr sem_run "$s" sh -c 'echo "out $1 $2 $("$3" peek "$4")"; echo "err" >&2; exit 42' \
		_ "a b" c "$HELPER" "$s"
	assert_failure 42
	assert_output "out a b c 2"
	assert_equal "$stderr" "err"
	assert_equal "$(sem_peek "$s")" 3
	for code in 0 3 255; do
		run --separate-stderr sem_run "$s" sh -c 'exit "$1"' _ "$code"
		assert_equal "$status" "$code"
		assert_silent
	done
	assert_equal "$(sem_peek "$s")" 3
}

@test "a function runs in the calling shell: gets its args, sees and sets its variables" {
	local s seen='' args='' inside='' rc=0
	s=$(sem_name s)
	sem_init "$s" 3
	IN=caller-value
	f() {
		seen=$IN
		args="$#:$1:$2"
		inside=$(sem_peek "$s")
		OUT=set-by-f
		echo "f out"
		echo "f err" >&2
		return 3
	}
	sem_run "$s" f "a b" c >"$D/out" 2>"$D/err" || rc=$?
	assert_equal "$rc" 3
	assert_equal "$seen" caller-value
	assert_equal "$args" "2:a b:c"
	assert_equal "$inside" 2
	assert_equal "$OUT" set-by-f
	assert_equal "$(cat "$D/out")" "f out"
	assert_equal "$(cat "$D/err")" "f err"
	assert_equal "$(sem_peek "$s")" 3
	# A builtin runs in the calling shell too.
	mkdir "$D/here"
	sem_run "$s" cd "$D/here"
	assert_equal "$PWD" "$D/here"
}

@test "the count is held exactly while COMMAND runs, on both paths" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	# An external COMMAND: peek from inside sees N-1.
	run --separate-stderr sem_run "$s" "$HELPER" peek "$s"
	assert_success
	assert_output 1
	assert_equal "$stderr" ""
	assert_equal "$(sem_peek "$s")" 2
	# A function: from inside, and from outside while it runs (it waits for a file).
	h() {
		sem_peek "$s" >"$D/inside.tmp"
		mv "$D/inside.tmp" "$D/inside"
		while [[ ! -e $D/go ]]; do sleep 0.02; done
	}
	bg_run "$D/r" "$s" h
	wait_for_file "$D/inside"
	assert_equal "$(cat "$D/inside")" 1
	sleep 0.1
	assert_equal "$(sem_peek "$s")" 1
	touch "$D/go"
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 0
	assert_equal "$(sem_peek "$s")" 2
	assert_waiter_silent "$D/r"
	# A program, from outside while it runs.
	bg_run "$D/p" "$s" sh -c ': >"$1/pin"; while [ ! -e "$1/pgo" ]; do sleep 0.02; done' _ "$D"
	wait_for_file "$D/pin"
	assert_equal "$(sem_peek "$s")" 1
	touch "$D/pgo"
	await "$D/p"
	assert_equal "$(rc_of "$D/p")" 0
	assert_equal "$(sem_peek "$s")" 2
	assert_waiter_silent "$D/p"
}

@test "sem_run waits for a count, then runs COMMAND as soon as one is posted (both paths)" {
	local s t0 rc start end
	s=$(sem_name s)
	sem_init "$s" 0
	bg_run "$D/r" "$s" ran
	wait_for_blocked "$s" 1
	assert [ ! -e "$D/ran" ]
	t0=$(now)
	sem_post "$s"
	await "$D/r"
	read -r rc start end <"$D/r"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 1
	assert [ -e "$D/ran" ]
	wait_for_value "$s" 1 2
	sem_trywait "$s"
	bg_run "$D/p" "$s" touch "$D/pran"
	wait_for_blocked "$s" 1
	assert [ ! -e "$D/pran" ]
	t0=$(now)
	sem_post "$s"
	await "$D/p"
	read -r rc start end <"$D/p"
	assert_equal "$rc" 0
	assert_elapsed "$t0" "$end" 0 1
	assert [ -e "$D/pran" ]
	wait_for_value "$s" 1 2
}

# assert_no_count_in_time CODE MIN MAX ARGS...: on both paths (the function `ran` and the
# program `touch $D/ran`), `sem_run ARGS COMMAND` returns CODE after MIN to MAX seconds,
# silent, and COMMAND does not run.
assert_no_count_in_time() {
	local code=$1 lo=$2 hi=$3 t0 t1 cmd
	shift 3
	for cmd in ran "touch $D/ran"; do
		t0=$(now)
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run "$@" $cmd
		t1=$(now)
		assert_failure "$code"
		assert_silent
		assert_elapsed "$t0" "$t1" "$lo" "$hi"
		assert [ ! -e "$D/ran" ]
	done
}

@test "-w 0 tries once and -w 0.5 waits about 0.5 s: CODE, silent, COMMAND not run, count left alone" {
	local z
	z=$(sem_name z)
	sem_init "$z" 0
	assert_no_count_in_time 1 0 1 -w 0 "$z"
	assert_no_count_in_time 9 0.4 2 -w 0.5 -E 9 "$z"
	assert_equal "$(sem_peek "$z")" 0
	# With a count there, -w 0 takes it.
	sem_post "$z"
	run --separate-stderr sem_run -w 0 "$z" "$HELPER" peek "$z"
	assert_success
	assert_output 0
	run --separate-stderr sem_run -w0 "$z" ran
	assert_success
	assert [ -e "$D/ran" ]
	assert_equal "$(sem_peek "$z")" 1
}

@test "bad options, or a missing NAME or COMMAND, are 125 and one line, COMMAND not run" {
	local s cmd e w
	s=$(sem_name s)
	sem_init "$s" 1
	for cmd in ran "touch $D/ran"; do
		for e in 256 -1 abc '' 1x; do
			# shellcheck disable=SC2086 # split "touch FILE" on purpose
			run --separate-stderr sem_run -E "$e" "$s" $cmd
			assert_failure 125
			assert_one_line_stderr
		done
		for w in abc 1s nan -x ''; do
			# shellcheck disable=SC2086 # split "touch FILE" on purpose
			run --separate-stderr timeout 5 bash -c 'source "$REPO_ROOT/sh/sem.sh"; ran() { :; }; sem_run -w "$3" "$1" $2' _ "$s" "$cmd" "$w"
			assert_failure 125
			assert_one_line_stderr
		done
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run -x "$s" $cmd
		assert_failure 125
		assert_one_line_stderr
	done
	run --separate-stderr sem_run
	assert_failure 125
	assert_one_line_stderr
	run --separate-stderr sem_run "$s"
	assert_failure 125
	assert_one_line_stderr
	assert [ ! -e "$D/ran" ]
	assert_equal "$(sem_peek "$s")" 1
}

@test "no such semaphore is 125 and one stderr line naming it, on both paths" {
	local m cmd
	m=$(sem_name missing)
	for cmd in ran "touch $D/ran"; do
		# shellcheck disable=SC2086 # split "touch FILE" on purpose
		run --separate-stderr sem_run "$m" $cmd
		assert_failure 125
		assert_one_line_stderr
		[[ $stderr == *"${m#posix:/}"* ]] || fail "the line does not name it: $stderr"
	done
	assert [ ! -e "$D/ran" ]
	run --separate-stderr sem_peek "$m"
	assert_failure 1
}

@test "a COMMAND that isn't found is 127, one that can't be executed 126; nothing taken" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run -127 --separate-stderr sem_run "$s" no-such-command-here
	assert_failure 127
	assert_one_line_stderr
	printf '#!/bin/sh\necho hi\n' >"$D/noexec"
	chmod 644 "$D/noexec"
	run --separate-stderr sem_run "$s" "$D/noexec"
	assert_failure 126
	assert_one_line_stderr
	assert_equal "$(sem_peek "$s")" 1
}

@test "kill -9 of an external COMMAND: the count comes back at once, sem_run returns 137" {
	local s t0
	s=$(sem_name s)
	sem_init "$s" 2
	bg_run "$D/r" "$s" sh -c 'echo $$ >"$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30' _ "$D/pid"
	wait_for_file "$D/pid"
	assert_equal "$(sem_peek "$s")" 1
	t0=$(now)
	kill -9 "$(cat "$D/pid")"
	wait_for_value "$s" 2 2
	assert_elapsed "$t0" "$(now)" 0 1
	await "$D/r"
	assert_equal "$(rc_of "$D/r")" 137
	# bash's "Killed" line is kept off stderr.
	assert_waiter_silent "$D/r"
}

@test "kill -9 of the calling shell while a function runs: its count comes back at once" {
	local s pid t0
	s=$(sem_name s)
	sem_init "$s" 2
	script run <<'EOF2'
f() {
	: >"$D/in"
	while :; do :; done
}
sem_run "$S" f
EOF2
	bg bash "$D/run" "$D" "$s"
	pid=$!
	wait_for_file "$D/in"
	assert_equal "$(sem_peek "$s")" 1
	t0=$(now)
	kill -9 "$pid"
	wait_for_value "$s" 2 3
	assert_elapsed "$t0" "$(now)" 0 1
}

@test "8 parallel sem_run on 3 slots: at most 3 at once, all 8 ran, value back to 3" {
	local s i most
	s=$(sem_name s)
	sem_init "$s" 3
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
	for i in 1 2 3 4 5 6 7 8; do
		if ((i % 2)); then
			bg_run "$D/r$i" "$s" work "$D/log" "$i"
		else
			bg_run "$D/r$i" "$s" sh -c "$body" _ "$D/log" "$i"
		fi
	done
	for i in 1 2 3 4 5 6 7 8; do
		await "$D/r$i" 20
		assert_equal "$(rc_of "$D/r$i")" 0
	done
	assert_equal "$(grep -c '^S' "$D/log")" 8
	assert_equal "$(grep -c '^E' "$D/log")" 8
	most=$(awk '$1 == "S" { c++; if (c > m) m = c } $1 == "E" { c-- } END { print m + 0 }' "$D/log")
	assert_equal "$most" 3
	wait_for_value "$s" 3 2
}

@test "sem_run --init creates NAME on first use; of many racers all run; then it is used as it is" {
	local s i pids=()
	s=$(sem_name s)
	for i in 1 2 3 4 5 6; do
		bg sem_run --init 2 "$s" sh -c 'echo x >>"$1"' _ "$D/ran"
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		reap "$i"
		assert_success
	done
	assert_equal "$(wc -l <"$D/ran")" 6
	wait_for_value "$s" 2 2
	# An existing NAME is used as it is: VALUE doesn't change it.
	run --separate-stderr sem_run --init 5 "$s" "$HELPER" peek "$s"
	assert_success
	assert_output 1
	assert_equal "$(sem_peek "$s")" 2
}

@test "sem_run -n COUNT holds COUNT counts on both paths; more than the semaphore holds is refused at once" {
	require_capability take_n
	local s t0
	s=$(sem_name s)
	sem_init "$s" 4
	f() { sem_peek "$s"; }
	run --separate-stderr sem_run -n 3 "$s" f
	assert_success
	assert_output 1
	run --separate-stderr sem_run -n3 "$s" "$HELPER" peek "$s"
	assert_success
	assert_output 1
	assert_equal "$(sem_peek "$s")" 4
	t0=$(now)
	# Under timeout(1), so that a hang fails rather than blocks (a function needs a shell).
	run --separate-stderr timeout 10 bash -c 'source "$REPO_ROOT/sh/sem.sh"; f() { :; }; sem_run -n 5 "$1" f' _ "$s"
	assert_failure 125
	assert_one_line_stderr
	[[ $stderr == sem_run:* ]] || fail "unexpected message: $stderr"
	run --separate-stderr timeout 10 bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_run -n 5 "$1" /bin/true' _ "$s"
	assert_failure 125
	assert_one_line_stderr
	assert_elapsed "$t0" "$(now)" 0 3
	assert_equal "$(sem_peek "$s")" 4
}

@test "sem_run works in a caller running set -euo pipefail" {
	local s z
	s=$(sem_name s) z=$(sem_name z)
	sem_init "$s" 2
	sem_init "$z" 0
	script run <<'EOF2'
set -euo pipefail
Z=$3 M=$4
f() { X=$1; }
sem_run "$S" f val
echo "X=$X"
sem_run "$S" true
rc=0
sem_run "$S" sh -c 'exit 3' || rc=$?
echo "program=$rc"
rc=0
sem_run -w 0 "$Z" f x || rc=$?
echo "timeout=$rc"
rc=0
sem_run -w 0 "$M" /bin/true 2>/dev/null || rc=$?
echo "missing=$rc"
echo "value=$(sem_peek "$S")"
g() { return 4; }
sem_run "$S" g
echo "not reached"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s" "$z" "$(sem_name missing)"
	assert_failure 4
	assert_output $'X=val\nprogram=3\ntimeout=1\nmissing=125\nvalue=2'
	assert_equal "$stderr" ""
	wait_for_value "$s" 2 2
}

@test "under set -e a failing command in a function run by sem_run ends the shell, count back" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	script run <<'EOF2'
set -e
f() { false; echo "after false"; }
sem_run "$S" f
echo "not reached"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_failure 1
	assert_output ""
	wait_for_value "$s" 2 2
}

@test "sem_run leaks no descriptors and changes no option or trap of the caller" {
	local s z
	s=$(sem_name s) z=$(sem_name z)
	sem_init "$s" 2
	sem_init "$z" 0
	script run <<'EOF2'
Z=$3 M=$4
state() { ls /proc/$$/fd | sort | tr '\n' ' '; echo; set +o; shopt -p; trap -p; echo "IFS=$(printf %q "$IFS")"; }
trap 'echo term' TERM
set -u
shopt -s nullglob
f() { :; }
before=$(state)
sem_run "$S" f
sem_run "$S" /bin/true
sem_run "$S" :
sem_run -w 0 "$Z" f || :
sem_run -w 0 "$Z" /bin/true || :
sem_run "$M" f 2>/dev/null || :
sem_run "$M" /bin/true 2>/dev/null || :
sem_run -x "$S" f 2>/dev/null || :
sem_run "$S" no-such-command 2>/dev/null || :
# A descriptor that closes a moment later (a process substitution being reaped) is no
# leak: look again for up to 1 s; a leaked one stays.
for ((i = 0; i < 50; i++)); do
	after=$(state)
	[[ $before == "$after" ]] && break
	sleep 0.02
done
if [[ $before == "$after" ]]; then echo same; else diff <(echo "$before") <(echo "$after"); fi
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s" "$z" "$(sem_name missing)"
	assert_success
	assert_output same
	wait_for_value "$s" 2 2
}
