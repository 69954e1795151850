#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr
# sem_release NAME, the contract every kind keeps: gives back, now, the counts of NAME
# this shell took with sem_hold. Returns 0 once they are back; 1 when this shell holds
# none of NAME, or on failure. Silent (SEM_VERBOSE=1 gives the reason).

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

@test "sem_release gives the count back before it returns; a second release returns 1" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	script run <<'EOF2'
sem_hold "$S"
sem_peek "$S"
sem_release "$S"; echo "rc=$?"
sem_peek "$S"
sem_release "$S" || echo "again rc=$?"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'0\nrc=0\n1\nagain rc=1'
	assert_equal "$stderr" ""
}

@test "sem_release releases every hold of NAME by this shell, and only this shell's" {
	local s other i
	s=$(sem_name s)
	sem_init "$s" 3
	script other <<'EOF2'
sem_hold "$S" && : >"$D/other-held"
while [[ ! -e $D/go ]]; do sleep 0.02; done
EOF2
	bg bash "$D/other" "$D" "$s"
	other=$!
	for ((i = 0; i < 500; i++)); do
		[[ -e $D/other-held ]] && break
		sleep 0.01
	done
	script run <<'EOF2'
sem_hold "$S"
sem_hold "$S"
sem_peek "$S"
sem_release "$S"
sem_peek "$S"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_output $'0\n2'
	touch "$D/go"
	reap "$other"
	for ((i = 0; i < 200; i++)); do
		[[ $(sem_peek "$s") == 3 ]] && break
		sleep 0.01
	done
	assert_equal "$(sem_peek "$s")" 3
}

@test "sem_release is silent on failure; SEM_VERBOSE=1 says why in one line" {
	local s
	s=$(sem_name s)
	sem_init "$s" 1
	run --separate-stderr sem_release "$s"
	assert_failure 1
	assert_silent
	SEM_VERBOSE=1 run --separate-stderr sem_release "$s"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_release
	assert_failure 1
	assert_silent
	run --separate-stderr sem_release "$(sem_name missing)"
	assert_failure 1
	assert_silent
	run sem_peek "$s"
	assert_output 1
}

@test "sem_release works in a caller running set -euo pipefail" {
	local s
	s=$(sem_name s)
	sem_init "$s" 2
	script run <<'EOF2'
set -euo pipefail
sem_hold "$S"
sem_release "$S"
rc=0
sem_release "$S" || rc=$?
echo "again=$rc value=$(sem_peek "$S")"
EOF2
	run --separate-stderr bash "$D/run" "$D" "$s"
	assert_success
	assert_equal "$stderr" ""
	assert_output "again=1 value=2"
}
