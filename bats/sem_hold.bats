#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr
# sem_hold [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME [TIMEOUT]: take
# COUNT counts of NAME for the rest of the calling shell's life; they come back when the
# shell ends, however it ends, or at sem_release NAME. Returns 0 once held; 1 when no
# count came in time (silent) or on failure (one line on stderr).

load test_helper

# script NAME: write stdin to $D/NAME, a script that takes $D as $1 and sources sem.sh.
script() {
	{
		echo 'D=$1'
		echo 'source "$REPO_ROOT/sh/sem.sh"'
		cat
	} >"$D/$1"
}

@test "sem_hold takes a count that stays taken after it returns, until the shell exits" {
	sem_init "$D/s" 2
	script run <<'EOF'
sem_hold "$D/s"
echo "rc=$?"
"$HELPER" peek "$D/s"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output $'rc=0\n1'
	assert_equal "$stderr" ""
	wait_for_value "$D/s" 2 2
}

@test "sem_hold: the count comes back when the shell is killed -9" {
	sem_init "$D/s" 1
	script run <<'EOF'
sem_hold "$D/s" && : >"$D/held"
while :; do sleep 0.05; done
EOF
	bg bash "$D/run" "$D"
	local pid=$!
	wait_for_file "$D/held"
	assert_equal "$(val "$D/s")" 0
	local t0
	t0=$(now)
	kill -9 "$pid"
	wait_for_value "$D/s" 1 3
	assert_elapsed "$t0" "$(now)" 0 1
}

@test "sem_hold: Ctrl-C to the script's process group keeps the hold while a trapping shell lives" {
	sem_init "$D/s" 1
	script run <<'EOF'
trap 'echo got >>"$D/trapped"' INT
sem_hold "$D/s" && : >"$D/held"
while [[ ! -e $D/go ]]; do sleep 0.02; done
"$HELPER" peek "$D/s" >"$D/end"
EOF
	perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die' -- setsid bash "$D/run" "$D" 3>&- &
	local pid=$!
	wait_for_file "$D/held"
	kill -INT -- "-$pid"
	wait_for_file "$D/trapped"
	sleep 0.2
	touch "$D/go"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/end")" 0
	wait_for_value "$D/s" 1 2
}

@test "sem_hold TIMEOUT: 1 after about the timeout, silent, nothing taken; 0 tries once" {
	sem_init "$D/s" 0
	local t0
	t0=$(now)
	run --separate-stderr sem_hold "$D/s" 0.3
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$(now)" 0.25 2
	run --separate-stderr sem_hold "$D/s" 0
	assert_failure 1
	assert_silent
	sem_post "$D/s"
	sleep 0.1
	assert_equal "$(val "$D/s")" 1
	assert_equal "$(waiters "$D/s")" 0
}

@test "sem_hold waits for a count, and takes it as soon as one is posted" {
	sem_init "$D/s" 0
	script run <<'EOF'
sem_hold "$D/s" && echo held
"$HELPER" peek "$D/s"
EOF
	bg bash "$D/run" "$D" >"$D/out"
	local pid=$!
	wait_for_waiters "$D/s" 1
	sem_post "$D/s"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/out")" $'held\n0'
	wait_for_value "$D/s" 1 2
}

@test "SIGTERM to the script while sem_hold waits: the wait stops, nothing is taken" {
	sem_init "$D/s" 0
	script run <<'EOF'
sem_hold "$D/s"
: >"$D/after"
EOF
	bg bash "$D/run" "$D"
	local pid=$!
	wait_for_waiters "$D/s" 1
	kill -TERM "$pid"
	reap "$pid"
	assert_equal "$status" 143
	sleep 0.2
	assert_equal "$(waiters "$D/s")" 0
	sem_post "$D/s"
	sleep 0.2
	assert_equal "$(val "$D/s")" 1
	assert [ ! -e "$D/after" ]
}

@test "sem_hold in a subshell holds for the subshell" {
	sem_init "$D/s" 1
	script run <<'EOF'
( sem_hold "$D/s"; "$HELPER" peek "$D/s" )
sleep 0.2
"$HELPER" peek "$D/s"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output $'0\n1'
}

@test "sem_hold -n COUNT takes COUNT at once; more than the semaphore can hold is refused at once" {
	sem_init "$D/s" 3
	script run <<'EOF'
sem_hold -n 2 "$D/s" && "$HELPER" peek "$D/s"
rc=0
sem_hold -n 4 "$D/s" || rc=$?
echo "rc=$rc"
EOF
	run --separate-stderr timeout 10 bash "$D/run" "$D"
	assert_success
	assert_output $'1\nrc=1'
	assert_stderr_one_line
	[[ $stderr == sem_hold:* ]] || fail "the line does not start with 'sem_hold:': $stderr"
	wait_for_value "$D/s" 3 2
}

@test "sem_hold --init creates the semaphore on first use, then uses it as it is" {
	script run <<'EOF'
sem_hold --init 2 --mode 0666 "$D/s" && "$HELPER" peek "$D/s"
sem_hold --init 5 "$D/s" && "$HELPER" peek "$D/s"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output $'1\n0'
	run "$HELPER" status --json "$D/s"
	assert_output --partial '"mode":"0666"'
}

@test "sem_hold fails with one line on a missing semaphore or bad arguments; nothing taken" {
	run --separate-stderr sem_hold "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == "sem_hold: "*"$D/missing"* ]] || fail "unexpected message: $stderr"
	sem_init "$D/s" 1
	run --separate-stderr sem_hold "$D/s" abc
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == 'sem_hold: invalid timeout "abc"'* ]] || fail "unexpected message: $stderr"
	run --separate-stderr sem_hold
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_hold -x "$D/s"
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(val "$D/s")" 1
}

@test "sem_hold leaves no descriptor, option or trap behind and works under set -euo pipefail" {
	sem_init "$D/s" 2
	script run <<'EOF'
state() { ls /proc/$$/fd | sort | tr '\n' ' '; echo; set +o; shopt -p; trap -p; }
set -euo pipefail
trap 'echo term' TERM
before=$(state)
sem_hold "$D/s"
sem_release "$D/s"
sem_hold "$D/s" 0
after=$(state)
if [[ $before == "$after" ]]; then echo same; else diff <(echo "$before") <(echo "$after"); fi
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output same
	wait_for_value "$D/s" 2 2
}
