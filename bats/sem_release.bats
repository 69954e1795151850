#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted scripts expand $D and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr
# sem_release NAME: give back, now, the counts of NAME that this shell took with sem_hold.
# Returns 0 once they are back; 1 when this shell holds none of NAME, or on failure.
# Silent (SEM_VERBOSE=1 gives the reason).

load test_helper

script() {
	{
		echo 'D=$1'
		echo 'source "$REPO_ROOT/sh/sem.sh"'
		cat
	} >"$D/$1"
}

@test "sem_release gives the count back before it returns; a second release returns 1" {
	sem_init "$D/s" 1
	script run <<'EOF'
sem_hold "$D/s"
"$HELPER" peek "$D/s"
sem_release "$D/s"; echo "rc=$?"
"$HELPER" peek "$D/s"
sem_release "$D/s" || echo "again rc=$?"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output $'0\nrc=0\n1\nagain rc=1'
	assert_equal "$stderr" ""
}

@test "sem_release releases every hold of NAME by this shell, and only this shell's" {
	sem_init "$D/s" 3
	script other <<'EOF'
sem_hold "$D/s" && : >"$D/other-held"
while [[ ! -e $D/go ]]; do sleep 0.02; done
EOF
	bg bash "$D/other" "$D"
	local other=$! i
	for ((i = 0; i < 500; i++)); do
		[[ -e $D/other-held ]] && break
		sleep 0.01
	done
	script run <<'EOF'
sem_hold "$D/s"
sem_hold "$D/s"
"$HELPER" peek "$D/s"
sem_release "$D/s"
"$HELPER" peek "$D/s"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output $'0\n2'
	touch "$D/go"
	reap "$other"
	sleep 0.2
	assert_equal "$("$HELPER" peek "$D/s")" 3
}

@test "sem_release with a relative NAME finds a hold taken by the same name" {
	sem_init s 1
	script run <<'EOF'
sem_hold s
sem_release "$HOME/s" && "$HELPER" peek "$HOME/s"
EOF
	run --separate-stderr bash "$D/run" "$D"
	assert_success
	assert_output 1
}

@test "sem_release is silent on failure; SEM_VERBOSE=1 says why" {
	sem_init "$D/s" 1
	run --separate-stderr sem_release "$D/s"
	assert_failure 1
	assert_silent
	SEM_VERBOSE=1 run --separate-stderr sem_release "$D/s"
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *"holds no count"* ]] || fail "unexpected message: $stderr"
	run --separate-stderr sem_release
	assert_failure 1
	assert_silent
	run --separate-stderr sem_release "$D/missing"
	assert_failure 1
	assert_silent
}
