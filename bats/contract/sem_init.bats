#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_init NAME VALUE [MODE], the contract every kind keeps: 0 and silence on success; 1
# and one line on failure, leaving nothing; exactly one of many racers creates a name.

load ../test_helper
load kind

# assert_init_fails NAME VALUE [MODE]: sem_init returns 1 with one line on stderr and
# leaves no semaphore at NAME.
assert_init_fails() {
	run --separate-stderr sem_init "$@"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_peek "$1"
	assert_failure 1
	assert_silent
}

@test "sem_init creates the semaphore with VALUE, silent on stdout and stderr" {
	local s
	s=$(sem_name s)
	run --separate-stderr sem_init "$s" 3
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$s"
	assert_success
	assert_output 3
}

@test "sem_init accepts VALUE 0 and the kind's largest; one more fails with one line, leaving nothing" {
	local zero max over
	zero=$(sem_name zero) max=$(sem_name max) over=$(sem_name over)
	run --separate-stderr sem_init "$zero" 0
	assert_success
	assert_silent
	run --separate-stderr sem_init "$max" "$(value_max)"
	assert_success
	assert_silent
	run sem_peek "$zero"
	assert_output 0
	run sem_peek "$max"
	assert_output "$(value_max)"
	assert_init_fails "$over" "$(($(value_max) + 1))"
}

@test "sem_init reads VALUE as decimal, leading zeros included" {
	local s
	s=$(sem_name s)
	run --separate-stderr sem_init "$s" 010
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 10
}

@test "sem_init rejects VALUEs that are not decimal digits, with one line each, leaving nothing" {
	local s v
	s=$(sem_name s)
	for v in '' -1 +1 1.5 0x10 ' 1' '1 ' 99999999999999999999 abc 1e3 $'1\n'; do
		assert_init_fails "$s" "$v"
	done
}

@test "sem_init rejects a bad MODE with one line, leaving nothing; 0660 is accepted" {
	local s m
	s=$(sem_name s)
	for m in 999 0o600 -1 '' 8 abc 0x1ff ' 0600'; do
		assert_init_fails "$s" 1 "$m"
	done
	run --separate-stderr sem_init "$s" 1 0660
	assert_success
	assert_silent
	run sem_peek "$s"
	assert_output 1
}

@test "sem_init on an existing name returns 1 with one line and leaves the original alone" {
	local s
	s=$(sem_name s)
	sem_init "$s" 5
	sem_trywait "$s"
	run --separate-stderr sem_init "$s" 2
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$s" 2 0660
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_peek "$s"
	assert_success
	assert_output 4
}

@test "an empty NAME fails with one line" {
	run --separate-stderr sem_init "" 1
	assert_failure 1
	assert_one_line_stderr
}

@test "sem_init with the wrong number of arguments returns 1 with one line, creating nothing" {
	local s
	s=$(sem_name s)
	run --separate-stderr sem_init
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$s"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$s" 1 0600 extra
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_peek "$s"
	assert_failure 1
}

@test "sem_init works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1" 2
		rc=0
		sem_init "$1" 2 2>/dev/null || rc=$?
		echo "again=$rc"
		sem_init "$2" 1 0660
		echo "value=$(sem_peek "$1")"
		[[ $- == *e* && $(set -o | grep pipefail) == *on ]] && echo "options kept"
		sem_destroy "$1"
		sem_destroy "$2"
		echo done
	' _ "$(sem_name s)" "$(sem_name t)"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'again=1\nvalue=2\noptions kept\ndone'
}

# gate_open, racer, gate_release: a barrier, as in concurrency.bats. Each racer opens the
# FIFO (at once, since we hold its write end), reports ready and blocks reading; closing
# our end gives every racer EOF at the same moment.
gate_open() {
	mkdir "$BATS_TEST_TMPDIR/ready"
	mkfifo "$BATS_TEST_TMPDIR/gate"
	exec 7<>"$BATS_TEST_TMPDIR/gate"
}

gate_release() {
	local n=$1 i
	for ((i = 0; i < 1000; i++)); do
		(($(find "$BATS_TEST_TMPDIR/ready" -type f | wc -l) >= n)) && break
		sleep 0.01
	done
	exec 7>&-
}

racer() {
	exec 7>&-
	{
		mktemp -p "$BATS_TEST_TMPDIR/ready" >/dev/null
		read -r _ || true
	} <"$BATS_TEST_TMPDIR/gate"
	"$@"
}

@test "atomic init: of 20 concurrent sem_inits exactly one wins, and its value stays" {
	local s i rc winners=()
	s=$(sem_name s)
	mkdir "$D/rc"
	gate_open
	for i in $(seq 1 20); do
		bg racer bash -c 'source "$1"; sem_init "$2" "$3" 2>"$4.err"; echo $? >"$4"' \
			_ "$REPO_ROOT/sh/sem.sh" "$s" "$i" "$D/rc/$i"
	done
	gate_release 20
	wait
	for i in $(seq 1 20); do
		rc=$(cat "$D/rc/$i")
		case $rc in
		0) winners+=("$i") ;;
		1) [[ $(wc -l <"$D/rc/$i.err") == 1 ]] || fail "loser $i: not one line: $(cat "$D/rc/$i.err")" ;;
		*) fail "sem_init $i returned $rc" ;;
		esac
	done
	assert_equal "${#winners[@]}" 1
	run sem_peek "$s"
	assert_success
	assert_output "${winners[0]}"
}
