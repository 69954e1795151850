#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# semctl-helper as a tool of its own: --help, --version, argument parsing and the exit
# codes that tell failures apart (sem.sh maps them all to 1).

load test_helper

# refute_panic: the last run's stderr holds no Rust panic message.
refute_panic() {
	if [[ $stderr == *panicked* || $output == *panicked* ]]; then
		fail "the helper panicked: $stderr"
	fi
}

# assert_usage_error: the last run was a usage error: status 2, nothing on stdout, and
# exactly one line on stderr naming the helper.
assert_usage_error() {
	assert_one_line_error 2
}

# assert_one_line_error CODE: status CODE, empty stdout, one line on stderr.
assert_one_line_error() {
	assert_failure "$1"
	assert_output ''
	[[ $stderr == semctl-helper:* ]] || fail "stderr does not start with 'semctl-helper:': $stderr"
	[[ $stderr != *$'\n'* ]] || fail "more than one line on stderr: $stderr"
	refute_panic
}

@test "--help exits 0 and prints the usage and every exit code on stdout" {
	run --separate-stderr "$HELPER" --help
	assert_success
	assert_equal "$stderr" ''
	assert_output --partial 'Usage: semctl-helper'
	local verb code
	for verb in init post wait trywait peek destroy; do
		grep -qE "^  $verb  " <<<"$output" || fail "--help does not list $verb"
	done
	assert_output --partial 'Exit codes:'
	for code in 0 1 2 3 4 5 6; do
		grep -qE "^  $code  [a-z]" <<<"$output" || fail "--help does not document exit code $code"
	done
}

@test "-h is --help" {
	run --separate-stderr "$HELPER" -h
	assert_success
	assert_equal "$stderr" ''
	assert_output --partial 'Exit codes:'
}

@test "--version exits 0 and prints the version on stdout" {
	run --separate-stderr "$HELPER" --version
	assert_success
	assert_equal "$stderr" ''
	assert_output --regexp '^semctl-helper [0-9]+\.[0-9]+\.[0-9]+'
	[[ $output != *$'\n'* ]] || fail "more than one line: $output"
}

@test "a subcommand's --help exits 0 on stdout" {
	local verb
	for verb in init post wait trywait peek destroy; do
		run --separate-stderr "$HELPER" "$verb" --help
		assert_success
		assert_equal "$stderr" ''
		assert_output --partial "Usage: semctl-helper $verb"
	done
}

@test "no subcommand is a usage error (2)" {
	run --separate-stderr "$HELPER"
	assert_usage_error
}

@test "an unknown subcommand is a usage error (2)" {
	run --separate-stderr "$HELPER" frobnicate "$D/s"
	assert_usage_error
	run --separate-stderr "$HELPER" --frobnicate
	assert_usage_error
}

@test "a mistyped subcommand is a usage error (2) whose one line suggests the one meant" {
	run --separate-stderr "$HELPER" wiat "$D/s"
	assert_usage_error
	assert_equal "$stderr" \
		"semctl-helper: unrecognized subcommand 'wiat'; a similar subcommand exists: 'wait' (see --help)"
	run --separate-stderr "$HELPER" stauts --json "$D/s"
	assert_usage_error
	[[ $stderr == *"a similar subcommand exists: 'status'"* ]] || fail "no suggestion: $stderr"
	run --separate-stderr "$HELPER" --verison
	assert_usage_error
	[[ $stderr == *"a similar argument exists: '--version'"* ]] || fail "no suggestion: $stderr"
	# Nothing close: no suggestion, the same one line.
	run --separate-stderr "$HELPER" frobnicate "$D/s"
	assert_usage_error
	[[ $stderr != *similar* ]] || fail "a suggestion for nothing similar: $stderr"
	[[ ! -e $D/s ]]
}

@test "a missing NAME is a usage error (2) for every subcommand" {
	local verb
	for verb in init post wait trywait peek destroy; do
		run --separate-stderr "$HELPER" "$verb"
		assert_usage_error
	done
}

@test "init without VALUE, or with extra arguments, is a usage error (2)" {
	run --separate-stderr "$HELPER" init "$D/s"
	assert_usage_error
	run --separate-stderr "$HELPER" init "$D/s" 1 0600 extra
	assert_usage_error
	run --separate-stderr "$HELPER" post "$D/s" extra
	assert_usage_error
	run --separate-stderr "$HELPER" wait "$D/s" 1 extra
	assert_usage_error
	[[ ! -e $D/s ]]
}

@test "a bad value is a usage error (2) and leaves nothing" {
	local v
	for v in '' abc -1 +1 1.5 ' 1' '1 ' 0x10 1e3; do
		run --separate-stderr "$HELPER" init "$D/s" "$v"
		assert_usage_error
		[[ ! -e $D/s ]] || fail "value '$v' left a file"
	done
}

@test "a bad mode is a usage error (2) and leaves nothing" {
	local m
	for m in '' 999 0x600 rw 0600x -600 12345670; do
		run --separate-stderr "$HELPER" init "$D/s" 1 "$m"
		assert_usage_error
		[[ ! -e $D/s ]] || fail "mode '$m' left a file"
	done
}

@test "a bad timeout is a usage error (2) and takes nothing" {
	"$HELPER" init "$D/s" 1
	local t
	for t in '' abc 1e3 1,5 '1 ' 0x1 inf nan; do
		run --separate-stderr "$HELPER" wait "$D/s" "$t"
		assert_usage_error
	done
	run "$HELPER" peek "$D/s"
	assert_output 1
}

@test "bad names are usage errors (2)" {
	run --separate-stderr "$HELPER" init '' 1
	assert_usage_error
	run --separate-stderr "$HELPER" init "$D/" 1
	assert_usage_error
	run --separate-stderr "$HELPER" peek ''
	assert_usage_error
}

@test "init succeeds (0) silently; init on an existing name is 6" {
	run --separate-stderr "$HELPER" init "$D/s" 3
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	run --separate-stderr "$HELPER" init "$D/s" 5
	assert_one_line_error 6
	run "$HELPER" peek "$D/s"
	assert_output 3
}

@test "peek prints the value and a newline" {
	"$HELPER" init "$D/s" 42
	run --separate-stderr "$HELPER" peek "$D/s"
	assert_success
	assert_output 42
	assert_equal "$stderr" ''
	# Exactly "42\n": command substitution would hide a missing or extra newline.
	assert_equal "$("$HELPER" peek "$D/s" | od -An -c | tr -s ' ')" ' 4 2 \n'
}

@test "post, trywait and wait succeed (0) silently" {
	"$HELPER" init "$D/s" 0
	run --separate-stderr "$HELPER" post "$D/s"
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	run --separate-stderr "$HELPER" trywait "$D/s"
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	"$HELPER" post "$D/s"
	run --separate-stderr "$HELPER" wait "$D/s" 1
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	run "$HELPER" peek "$D/s"
	assert_output 0
}

@test "would block is 1: trywait and wait 0 at value 0" {
	"$HELPER" init "$D/s" 0
	run --separate-stderr "$HELPER" trywait "$D/s"
	assert_failure 1
	assert_output ''
	refute_panic
	run --separate-stderr "$HELPER" wait "$D/s" 0
	assert_failure 1
	assert_output ''
	refute_panic
}

@test "a timeout is 1" {
	"$HELPER" init "$D/s" 0
	local start end
	start=$(now)
	run --separate-stderr "$HELPER" wait "$D/s" 0.2
	end=$(now)
	assert_failure 1
	assert_output ''
	refute_panic
	assert_elapsed "$start" "$end" 0.18 2
}

@test "wait NAME -1 waits forever without needing --" {
	"$HELPER" init "$D/s" 0
	bg "$HELPER" wait "$D/s" -1
	local pid=$!
	wait_for_waiters "$D/s" 1
	"$HELPER" post "$D/s"
	reap "$pid"
	assert_success
	run "$HELPER" peek "$D/s"
	assert_output 0
}

@test "wait NAME -0.5 waits forever too" {
	"$HELPER" init "$D/s" 0
	bg "$HELPER" wait "$D/s" -0.5
	local pid=$!
	wait_for_waiters "$D/s" 1
	"$HELPER" post "$D/s"
	reap "$pid"
	assert_success
}

@test "names starting with '-' work after --" {
	cd "$D"
	run --separate-stderr "$HELPER" init -- -s 2
	assert_success
	assert_equal "$stderr" ''
	[[ -f $HOME/-s ]]
	run --separate-stderr "$HELPER" peek -- -s
	assert_success
	assert_output 2
	run --separate-stderr "$HELPER" post -- -s
	assert_success
	run --separate-stderr "$HELPER" trywait -- -s
	assert_success
	run --separate-stderr "$HELPER" wait -- -s 0
	assert_success
	run --separate-stderr "$HELPER" wait -- -s -1
	assert_success
	run "$HELPER" peek -- -s
	assert_output 0
	run --separate-stderr "$HELPER" destroy -- -s
	assert_success
	assert_equal "$stderr" ''
	[[ ! -e $HOME/-s ]]
}

@test "no such semaphore is 3, for every operation" {
	local verb
	for verb in post wait trywait peek destroy; do
		run --separate-stderr "$HELPER" "$verb" "$D/none"
		assert_one_line_error 3
	done
}

@test "a missing parent directory is 3 with a clear message" {
	run --separate-stderr "$HELPER" peek "$D/no/such/dir/s"
	assert_one_line_error 3
	assert_equal "$(grep -c 'parent directory' <<<"$stderr")" 1
	run --separate-stderr "$HELPER" init "$D/no/such/dir/s" 1
	refute_panic
	assert_failure
	assert_output ''
	[[ $stderr == *'parent directory'* ]] || fail "unclear message: $stderr"
}

@test "a stale semaphore is 3" {
	"$HELPER" init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	local verb
	for verb in post wait trywait peek; do
		run --separate-stderr "$HELPER" "$verb" "$D/s"
		assert_one_line_error 3
	done
	[[ -f $D/s ]]
}

@test "a file that is not a record is 3" {
	echo garbage >"$D/s"
	run --separate-stderr "$HELPER" peek "$D/s"
	assert_one_line_error 3
	run --separate-stderr "$HELPER" post "$D/s"
	assert_one_line_error 3
}

@test "destroyed while waiting is 3" {
	"$HELPER" init "$D/s" 0
	bg "$HELPER" wait "$D/s"
	local pid=$!
	wait_for_waiters "$D/s" 1
	"$HELPER" destroy "$D/s"
	reap "$pid"
	assert_failure 3
}

@test "permission denied is 4: another uid's private semaphore" {
	reachable_by_nobody
	"$HELPER" init "$D/s" 1
	local verb
	for verb in post wait trywait peek; do
		run --separate-stderr as_nobody "$HELPER" "$verb" "$D/s"
		assert_one_line_error 4
	done
	run "$HELPER" peek "$D/s"
	assert_output 1
}

@test "not the owner is 4: destroying another uid's semaphore" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	"$HELPER" init "$D/pub/s" 1 0666
	run --separate-stderr as_nobody "$HELPER" destroy "$D/pub/s"
	assert_one_line_error 4
	run "$HELPER" peek "$D/pub/s"
	assert_output 1
}

@test "a value of 32768 is 5 and leaves nothing; 32767 is fine" {
	run --separate-stderr "$HELPER" init "$D/s" 32768
	assert_one_line_error 5
	[[ $stderr == *32767* ]] || fail "the message does not name the limit: $stderr"
	[[ ! -e $D/s ]]
	run --separate-stderr "$HELPER" init "$D/s" 99999999999999999999
	refute_panic
	assert_failure
	[[ ! -e $D/s ]]
	run --separate-stderr "$HELPER" init "$D/s" 32767
	assert_success
	run "$HELPER" peek "$D/s"
	assert_output 32767
}

@test "post at 32767 is 5 and leaves the value unchanged" {
	"$HELPER" init "$D/s" 32767
	run --separate-stderr "$HELPER" post "$D/s"
	assert_one_line_error 5
	run "$HELPER" peek "$D/s"
	assert_output 32767
}

@test "a kernel limit (SEMMNI) is 5 and named in the message" {
	# Fill the system's set table in a private IPC namespace, so that nobody else's
	# sets are touched.
	if [[ $(id -u) != 0 ]] || ! unshare -i true 2>/dev/null; then
		skip "needs root and unshare -i"
	fi
	run --separate-stderr unshare -i bash -c '
		echo "250 32000 32 4" >/proc/sys/kernel/sem
		for i in 1 2 3 4; do ipcmk -S 1 >/dev/null || exit 99; done
		"$1" init "$2" 1' _ "$HELPER" "$D/s"
	assert_one_line_error 5
	[[ $stderr == *SEMMNI* ]] || fail "the message does not name SEMMNI: $stderr"
	[[ ! -e $D/s ]]
}

@test "no panic whatever the arguments" {
	local args
	for args in 'init' 'init x' 'init x y z w' 'wait x 99999999999999999999' \
		'wait x 0.0000000001' 'wait x -99999999999' 'wait x .5' 'wait x 5.' \
		'init x 1 07777' 'init x 1 0' 'peek //' 'peek /' 'peek .' 'peek ..'; do
		# shellcheck disable=SC2086 # split the argument list on purpose
		run --separate-stderr "$HELPER" $args
		refute_panic
		(( status != 0 && status < 128 )) || [[ $args == 'init x 1 0' ]] ||
			fail "'$args' exited $status"
		"$HELPER" destroy x 2>/dev/null || true
	done
	run --separate-stderr "$HELPER" peek $'\xff\xfe'
	refute_panic
	assert_failure 3
	local long
	long=$(printf 'a%.0s' {1..300})
	run --separate-stderr "$HELPER" init "$D/$long" 1
	refute_panic
	assert_failure 2
	run --separate-stderr "$HELPER" peek "$D/$(printf 'dir/%.0s' {1..1100})s"
	refute_panic
	assert_failure 2
}

# --- run and hold: -n N and --init VALUE [--mode MODE] ---

# value_is NAME V [SECONDS]: poll until NAME's value is V.
value_is() {
	local i limit=${3:-10}
	for ((i = 0; i < limit * 100; i++)); do
		[[ $("$HELPER" peek "$1") == "$2" ]] && return 0
		sleep 0.01
	done
	fail "the value of $1 is $("$HELPER" peek "$1"), not $2, after $limit s"
}

# start_hold OUT ARGS...: start `hold ARGS...` with stdin from the FIFO OUT.in (held open
# read-write on fd HOLD_FD, so that writing a byte to it releases the holder) and stdout
# in OUT. hold forks and the process started ends at once; its status is in $status.
start_hold() {
	local out=$1
	shift
	mkfifo "$out.in"
	exec {HOLD_FD}<>"$out.in"
	# shellcheck disable=SC2034 # status and output are read by bats' assert_* functions
	status=0 output=''
	"$HELPER" hold "$@" <"$out.in" >"$out" 2>"$out.err" 3>&- || status=$?
}

# hold_answer OUT: poll until the holder has answered in OUT, and print the answer.
hold_answer() {
	local i
	for ((i = 0; i < 1000; i++)); do
		if [[ -s $1 ]]; then
			cat "$1"
			return 0
		fi
		sleep 0.01
	done
	fail "no answer in $1 within 10 s"
}

@test "run -n 2 holds 2 counts while PROGRAM runs, then gives both back" {
	"$HELPER" init "$D/s" 4
	run --separate-stderr "$HELPER" run -n 2 "$D/s" -- "$HELPER" peek "$D/s"
	assert_success
	assert_equal "$stderr" ''
	assert_output 2
	run --separate-stderr "$HELPER" run --count 3 -w 0 "$D/s" -- "$HELPER" peek "$D/s"
	assert_success
	assert_output 1
	"$HELPER" wait -n 3 "$D/s" 0
	# 1 there, 2 asked, none in time: CODE, PROGRAM not run, nothing taken.
	run --separate-stderr "$HELPER" run -n2 -w 0.2 -E 9 "$D/s" -- touch "$D/ran"
	assert_failure 9
	[[ ! -e $D/ran ]]
	run "$HELPER" peek "$D/s"
	assert_output 1
}

@test "3 workers each 'run -n 2' on a semaphore of 4 never have more than 4 counts out" {
	"$HELPER" init "$D/s" 4
	echo 0 >"$D/out"
	# Each round adds its 2 counts to a shared tally under a lock, logs the tally, works a
	# moment, and takes its 2 back out.
	local worker=$D/worker
	cat >"$worker" <<'SH'
#!/bin/bash
tally() { flock "$1/lock" bash -c 'n=$(( $(cat "$1/out") + $2 )); echo "$n" >"$1/out"; echo "$n" >>"$1/log"' _ "$1" "$2"; }
tally "$1" 2
sleep 0.05
tally "$1" -2
SH
	chmod +x "$worker"
	local pids=() w
	for w in 1 2 3; do
		bg bash -c 'for r in 1 2 3 4 5; do "$1" run -n 2 "$2/s" -- "$3" "$2" || exit; done' _ \
			"$HELPER" "$D" "$worker"
		pids+=($!)
	done
	for w in "${pids[@]}"; do
		reap "$w"
		assert_success
	done
	assert_equal "$(wc -l <"$D/log")" 30
	local max
	max=$(sort -n "$D/log" | tail -1)
	((max <= 4)) || fail "$max counts were out at once: $(tr '\n' ' ' <"$D/log")"
	assert_equal "$(cat "$D/out")" 0
	run "$HELPER" peek "$D/s"
	assert_output 4
}

@test "a take of 5 on a semaphore of 4 fails at once: run 125, hold 'no 5'; one line each" {
	"$HELPER" init "$D/s" 4
	local t0 t1
	t0=$(now)
	run --separate-stderr "$HELPER" run -n 5 "$D/s" -- touch "$D/ran"
	t1=$(now)
	assert_failure 125
	assert_output ''
	assert_equal "$stderr" "semctl-helper: run: $D/s: asks for 5 counts, but the semaphore holds at most 4 (its initial value)"
	assert_elapsed "$t0" "$t1" 0 1
	[[ ! -e $D/ran ]]
	# hold's answer: the process started ends at once (hold forks), the answer follows.
	run --separate-stderr "$HELPER" hold -n 5 "$D/s" </dev/null
	assert_output 'no 5'
	assert_equal "$stderr" "semctl-helper: hold: $D/s: asks for 5 counts, but the semaphore holds at most 4 (its initial value)"
	run "$HELPER" peek "$D/s"
	assert_output 4
}

@test "a 'run -n 2' killed with -9 gives both counts back at once" {
	"$HELPER" init "$D/s" 3
	bg "$HELPER" run -n 2 "$D/s" -- sleep 30
	local pid=$!
	value_is "$D/s" 1
	kill -9 "$pid"
	value_is "$D/s" 3 2
	reap "$pid"
	assert_failure 137
}

@test "hold -n 2 holds 2 counts until a byte arrives, then gives both back" {
	"$HELPER" init "$D/s" 3
	start_hold "$D/h" -n 2 "$D/s"
	assert_success
	assert_equal "$(hold_answer "$D/h")" ok
	assert_equal "$("$HELPER" peek "$D/s")" 1
	echo >&"$HOLD_FD"
	value_is "$D/s" 3 2
	exec {HOLD_FD}>&-
	assert_equal "$(cat "$D/h.err")" ''
}

@test "run -n with a bad N is 125 and one line, nothing taken, PROGRAM not run" {
	"$HELPER" init "$D/s" 2
	local n
	for n in 0 -1 abc 1.5 '' 32768; do
		run --separate-stderr "$HELPER" run -n "$n" "$D/s" -- touch "$D/ran"
		assert_one_line_error 125
	done
	[[ ! -e $D/ran ]]
	run "$HELPER" peek "$D/s"
	assert_output 2
}

@test "run --init creates a missing NAME with VALUE and MODE, runs, and gives the count back" {
	run --separate-stderr "$HELPER" run --init 3 --mode 0660 "$D/new" -- "$HELPER" peek "$D/new"
	assert_success
	assert_equal "$stderr" ''
	assert_output 2
	run "$HELPER" peek "$D/new"
	assert_output 3
	run "$HELPER" status --json "$D/new"
	[[ $output == *'"mode":"0660"'* && $output == *'"capacity":3'* ]] || fail "$output"
	# Without --mode: 0600.
	run --separate-stderr "$HELPER" run --init 1 -n 1 "$D/new2" -- true
	assert_success
	run "$HELPER" status --json "$D/new2"
	[[ $output == *'"mode":"0600"'* ]] || fail "$output"
}

@test "run --init on an existing NAME uses it as it is: its value and mode stay" {
	"$HELPER" init "$D/s" 5
	run --separate-stderr "$HELPER" run --init 1 --mode 0666 "$D/s" -- "$HELPER" peek "$D/s"
	assert_success
	assert_output 4
	run "$HELPER" status --json "$D/s"
	[[ $output == *'"mode":"0600"'* && $output == *'"value":5,"capacity":5'* ]] || fail "$output"
}

@test "run --init reclaims the caller's stale NAME; refuses what isn't a record (125, untouched)" {
	"$HELPER" init "$D/s" 5
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr "$HELPER" run --init 2 "$D/s" -- "$HELPER" peek "$D/s"
	assert_success
	assert_output 1
	run "$HELPER" peek "$D/s"
	assert_output 2
	echo "not a semaphore" >"$D/junk"
	run --separate-stderr "$HELPER" run --init 2 "$D/junk" -- touch "$D/ran"
	assert_one_line_error 125
	[[ ! -e $D/ran ]]
	assert_equal "$(cat "$D/junk")" "not a semaphore"
}

@test "hold --init creates a missing NAME, holds its count, and gives it back" {
	start_hold "$D/h" --init 2 --mode 0660 "$D/s"
	assert_success
	assert_equal "$(hold_answer "$D/h")" ok
	assert_equal "$("$HELPER" peek "$D/s")" 1
	echo >&"$HOLD_FD"
	value_is "$D/s" 2 2
	exec {HOLD_FD}>&-
	run "$HELPER" status --json "$D/s"
	[[ $output == *'"mode":"0660"'* ]] || fail "$output"
}

@test "--mode without --init, or a bad --init VALUE or --mode: usage error, nothing created" {
	run --separate-stderr "$HELPER" run --mode 0660 "$D/s" -- true
	assert_one_line_error 125
	run --separate-stderr "$HELPER" hold --mode 0660 "$D/s" </dev/null
	assert_failure 2
	assert_output 'no 2'
	local bad
	for bad in '--init -1' '--init abc' '--init 1 --mode 999' '--init 1 --mode 0400'; do
		# shellcheck disable=SC2086 # split the options on purpose
		run --separate-stderr "$HELPER" run $bad "$D/s" -- true
		assert_one_line_error 125
	done
	run --separate-stderr "$HELPER" run --init 32768 "$D/s" -- true
	assert_one_line_error 125
	[[ ! -e $D/s ]]
}
