#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr
# sem_hold [-n COUNT] [--init VALUE ...] NAME [TIMEOUT], the contract every kind keeps:
# takes COUNT counts of NAME for the rest of the calling shell's life; they come back when
# the shell ends, however it ends, or at sem_release NAME. Returns 0 once held; 1 when
# no count came in time (silent) or on failure (one line on stderr).

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

@test "sem_hold takes a count that stays taken after it returns, until the shell exits" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	script run <<'EOF2'
sem_hold "$S"
echo "rc=$?"
sem_peek "$S"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'rc=0\n1'
	assert_equal "$stderr" ""
	wait_for_value "$s" 2 2
}

@test "sem_hold: the count comes back within 1 s when the shell is killed -9" {
	local s pid t0
	s=$(sem_name s)
	sem_init "$s" 1
	script run <<'EOF2'
sem_hold "$S" && : >"$D/held"
while :; do sleep 0.05; done
EOF2
	bg bash "$D/run" "$D" "$s"
	pid=$!
	wait_for_file "$D/held"
	assert_equal "$(sem_peek "$s")" 0
	t0=$(now)
	kill -9 "$pid"
	wait_for_value "$s" 1 3
	assert_elapsed "$t0" "$(now)" 0 1
}

@test "sem_hold TIMEOUT: 1 after about the timeout, silent, nothing taken; 0 tries once" {
	local s t0
	s=$(sem_name s)
	sem_init "$s" 0
	t0=$(now)
	run --separate-stderr sem_hold "$s" 0.3
	assert_failure 1
	assert_silent
	assert_elapsed "$t0" "$(now)" 0.25 2
	run --separate-stderr sem_hold "$s" 0
	assert_failure 1
	assert_silent
	sem_post "$s"
	sleep 0.1
	assert_equal "$(sem_peek "$s")" 1
}

@test "sem_hold waits for a count, and takes it as soon as one is posted" {
	local s pid
	s=$(sem_name s)
	sem_init "$s" 0
	script run <<'EOF2'
sem_hold "$S" && echo held
sem_peek "$S"
EOF2
	bg bash "$D/run" "$D" "$s" >"$D/out"
	pid=$!
	wait_for_blocked "$s" 1
	sem_post "$s"
	reap "$pid"
	assert_success
	assert_equal "$(cat "$D/out")" $'held\n0'
	wait_for_value "$s" 1 2
}

@test "SIGTERM to the script while sem_hold waits: the wait stops, nothing is taken" {
	local s pid
	s=$(sem_name s)
	sem_init "$s" 0
	script run <<'EOF2'
sem_hold "$S"
: >"$D/after"
EOF2
	bg bash "$D/run" "$D" "$s"
	pid=$!
	wait_for_blocked "$s" 1
	kill -TERM "$pid"
	reap "$pid"
	assert_equal "$status" 143
	wait_for_blocked "$s" 0
	sem_post "$s"
	sleep 0.2
	assert_equal "$(sem_peek "$s")" 1
	assert [ ! -e "$D/after" ]
}

@test "sem_hold in a subshell holds for the subshell" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	script run <<'EOF2'
( sem_hold "$S"; sem_peek "$S" )
for ((i = 0; i < 100; i++)); do [[ $(sem_peek "$S") == 1 ]] && break; sleep 0.02; done
sem_peek "$S"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'0\n1'
}

@test "sem_hold -n COUNT takes COUNT at once; more than the semaphore can hold is refused at once" {
	require_capability take_n
	local s
	s=$(sem_name s)
	sem_init "$s" 3
	script run <<'EOF2'
sem_hold -n 2 "$S" && sem_peek "$S"
rc=0
sem_hold -n 4 "$S" || rc=$?
echo "rc=$rc"
EOF2
	run --separate-stderr timeout 10 bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'1\nrc=1'
	assert_stderr_one_line
	[[ $stderr == sem_hold:* ]] || fail "the line does not start with 'sem_hold:': $stderr"
	wait_for_value "$s" 3 2
}

@test "sem_hold --init creates the semaphore on first use, then uses it as it is" {
	local s
	s=$(sem_name s)
	script run <<'EOF2'
sem_hold --init 2 --mode 0600 "$S" && sem_peek "$S"
sem_hold --init 5 "$S" && sem_peek "$S"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'1\n0'
	assert_equal "$stderr" ""
	wait_for_value "$s" 2 2
}

@test "sem_hold fails with one line on a missing semaphore or bad arguments; nothing taken" {
	local s m
	s=$(sem_name s) m=$(sem_name missing)
	run --separate-stderr sem_hold "$m"
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == "sem_hold: "*"${m#posix:/}"* ]] || fail "unexpected message: $stderr"
	sem_init "$s" 1
	run --separate-stderr sem_hold "$s" abc
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == 'sem_hold: invalid timeout "abc"'* ]] || fail "unexpected message: $stderr"
	run --separate-stderr sem_hold
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_hold -x "$s"
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(sem_peek "$s")" 1
}

@test "sem_hold leaves no descriptor, option or trap behind and works under set -euo pipefail" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	script run <<'EOF2'
state() { ls /proc/$$/fd | sort | tr '\n' ' '; echo; set +o; shopt -p; trap -p; }
set -euo pipefail
trap 'echo term' TERM
before=$(state)
sem_hold "$S"
sem_release "$S"
sem_hold "$S" 0
# A descriptor that closes a moment later (a process substitution being reaped) is no
# leak: look again for up to 1 s; a leaked one stays.
for ((i = 0; i < 50; i++)); do
	after=$(state)
	[[ $before == "$after" ]] && break
	sleep 0.02
done
if [[ $before == "$after" ]]; then echo same; else diff <(echo "$before") <(echo "$after"); fi
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output same
	assert_equal "$stderr" ""
	wait_for_value "$s" 2 2
}
