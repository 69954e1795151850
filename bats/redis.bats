#!/usr/bin/env bats
# What only Redis names have: their names and server URLs, passwords kept out of sight,
# an unreachable server, leases (SEM_FENCE, holders in status, a lost lease stopping the
# command), quiet start. The shared contract runs on Redis in bats/contract/
# (SEM_TEST_KIND=redis); machines sharing a server are in bats/fleet.bats.

load test_helper
# shellcheck source=bats/redis.bash
source "$REPO_ROOT/bats/redis.bash"

REDIS_SERVER=$REPO_ROOT/tests/redis/server.sh

setup_file() {
	command -v redis-server >/dev/null || return 0
	local port
	port=$("$REDIS_SERVER" start "$BATS_FILE_TMPDIR/redis") || return 1
	export SEM_REDIS_URL=redis://127.0.0.1:$port REDIS_PORT=$port
	# Short leases, so that the lease tests are quick; a fresh server grants nothing
	# for one lease (quiet start).
	export SEM_LEASE=1
	sleep 1.1
}

teardown_file() {
	[[ -d $BATS_FILE_TMPDIR/redis ]] || return 0
	"$REDIS_SERVER" stop "$BATS_FILE_TMPDIR/redis"
}

# test_helper's own setup and teardown, run by ours.
eval "setup_common() $(declare -f setup | tail -n +2)"
eval "teardown_common() $(declare -f teardown | tail -n +2)"

setup() {
	command -v redis-server >/dev/null || skip "redis-server is not installed (make deps)"
	setup_common
	N=redis:rb-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER
}

teardown() {
	local left='' rc=0
	if [[ -n ${SEM_REDIS_URL:-} ]]; then
		left=$(redis_clean "rb-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER")
	fi
	teardown_common || rc=$?
	[[ -z $left ]] || fail "leaked Redis keys: $left"
	return "$rc"
}

# ok ARG...: the helper with ARG... succeeds.
ok() {
	run --separate-stderr timeout 10 "$HELPER" "$@"
	assert_success
}

# lib FUNC ARGS...: run a sem.sh function in a fresh bash under a 10 s timeout.
lib() {
	run --separate-stderr timeout 10 bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@"
}

# lib_bg FUNC ARGS...: the same in the background (pid in $!), stderr in bg.err.
lib_bg() {
	bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@" 2>"$BATS_TEST_TMPDIR/bg.err" 3>&- &
}

# shell SCRIPT: run SCRIPT in a fresh bash with sem.sh sourced.
shell() {
	run --separate-stderr timeout 10 bash -c "source \"\$REPO_ROOT/sh/sem.sh\"; $1"
}

# value_is NAME N: NAME's value is exactly N.
value_is() {
	assert_equal "$("$HELPER" peek "$1")" "$2"
}

@test "an unreachable server: exit 7 for every subcommand, one line naming it, never the password" {
	local n=redis://alice:hunter2@127.0.0.1:1/x c
	for c in "init $n 1" "post $n" "wait $n" "wait $n 0" "trywait $n" "peek $n" \
		"destroy $n" "relax $n" "status $n" "status --json $n" "hold $n" "run $n -- touch $D/ran"; do
		# shellcheck disable=SC2086 # one word per argument
		run --separate-stderr timeout 10 "$HELPER" $c </dev/null
		if [[ $c == hold* ]]; then
			# hold answers on stdout (it has left its caller's process by then).
			assert_output "no 7"
		elif [[ $c == run* ]]; then
			assert_failure 125
		else
			assert_failure 7
			assert_output ""
		fi
		assert_stderr_one_line
		[[ $stderr == *"cannot reach redis://127.0.0.1:1"* ]] || fail "$c: $stderr"
		[[ $stderr != *hunter2* && $stderr != *alice* ]] || fail "$c shows the credentials: $stderr"
	done
	for c in "sem_init $n 1" "sem_post $n" "sem_wait $n 0" "sem_trywait $n" "sem_peek $n" \
		"sem_destroy $n" "sem_relax $n" "sem_status $n"; do
		# shellcheck disable=SC2086 # one word per argument
		lib $c
		assert_failure 1
		assert_output ""
	done
	lib sem_run "$n" touch "$D/ran"
	assert_failure 125
	assert_one_line_stderr
	[[ $stderr != *hunter2* ]] || fail "sem_run shows the password: $stderr"
	[[ ! -e $D/ran ]] || fail "run ran PROGRAM"
}

@test "redis:NAME without SEM_REDIS_URL, malformed names and rediss://: one line, exit 2 (8 for TLS)" {
	run --separate-stderr env -u SEM_REDIS_URL "$HELPER" peek redis:x
	assert_failure 2
	assert_one_line_stderr
	[[ $stderr == *SEM_REDIS_URL* ]] || fail "$stderr"
	local bad
	for bad in 'redis://h/a b' redis://h/ redis: 'redis:a/b' 'redis://u:pw@h:99999/x' redis://h/1/2/3; do
		run --separate-stderr "$HELPER" peek "$bad"
		assert_failure 2
		assert_one_line_stderr
		[[ $stderr != *pw@* ]] || fail "$bad: shows the password: $stderr"
	done
	run --separate-stderr "$HELPER" peek rediss://h/x
	assert_failure 8
	assert_one_line_stderr
	SEM_REDIS_URL=http://h run --separate-stderr "$HELPER" peek redis:x
	assert_failure 2
	assert_one_line_stderr
}

@test "SEM_LEASE: seconds from 0.5 to 86400; anything else is one line, exit 2" {
	ok init "$N" 1
	local l
	for l in 0 0.1 abc -1 86401 ''; do
		SEM_LEASE=$l run --separate-stderr "$HELPER" run "$N" -- true
		assert_failure 125
		assert_one_line_stderr
		[[ $stderr == *SEM_LEASE* ]] || fail "SEM_LEASE=$l: $stderr"
	done
	SEM_LEASE=0.5 ok run "$N" -- true
	assert_success
	ok destroy "$N"
}

@test "a password is blanked in ps, and never in status, list or errors; a wrong one is exit 4" {
	redis_cli ACL SETUSER "rb$BATS_ROOT_PID" on '>s3cret-pw' '~*' '+@all' >/dev/null
	local url=redis://rb$BATS_ROOT_PID:s3cret-pw@127.0.0.1:$REDIS_PORT/${N#redis:}
	ok init "$url" 0
	"$HELPER" wait -w 5 "$url" &
	local pid=$! i
	for ((i = 0; i < 250; i++)); do
		[[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *'*******'* ]] && break
		sleep 0.02
	done
	local title
	title=$(ps -o args= -p "$pid")
	[[ $title == *"rb$BATS_ROOT_PID:*********@127.0.0.1"* ]] || fail "ps shows: $title"
	[[ $title != *s3cret* ]] || fail "ps shows the password: $title"
	run --separate-stderr "$HELPER" status "$url"
	assert_success
	[[ $output != *s3cret* && $output == *"redis://127.0.0.1:$REDIS_PORT"* ]] || fail "$output"
	run --separate-stderr "$HELPER" status --json "$url"
	[[ $output != *s3cret* ]] || fail "$output"
	run --separate-stderr "$HELPER" list "redis://rb$BATS_ROOT_PID:s3cret-pw@127.0.0.1:$REDIS_PORT"
	assert_success
	[[ $output != *s3cret* && $output == *"${N#redis:}"* ]] || fail "$output"
	ok post "$url"
	wait "$pid"
	run --separate-stderr "$HELPER" peek "redis://rb$BATS_ROOT_PID:wrong-pw@127.0.0.1:$REDIS_PORT/${N#redis:}"
	assert_failure 4
	assert_one_line_stderr
	[[ $stderr == *"refused our user or password"* && $stderr != *wrong-pw* ]] || fail "$stderr"
	ok destroy "$url"
	redis_cli ACL DELUSER "rb$BATS_ROOT_PID" >/dev/null
}

@test "sem_run: the command sees SEM_FENCE, rising from grant to grant; status shows it as a holder" {
	lib sem_init "$N" 1
	lib sem_run "$N" sh -c 'echo "$SEM_FENCE"'
	assert_success
	local first=$output
	[[ $first =~ ^[0-9]+$ ]] || fail "SEM_FENCE: '$first'"
	SEM_LEASE=3 lib_bg sem_run "$N" sleep 2
	local i
	for ((i = 0; i < 250; i++)); do
		[[ $("$HELPER" status --json "$N" | jq '.holders | length') == 1 ]] && break
		sleep 0.02
	done
	run --separate-stderr "$HELPER" status --json "$N"
	assert_success
	local h
	h=$(jq -c '.holders[0]' <<<"$output")
	[[ $(jq -r .host <<<"$h") == "$(cat /proc/sys/kernel/hostname)" ]] || fail "$h"
	[[ $(jq -r .count <<<"$h") == 1 ]] || fail "$h"
	(($(jq -r .fence <<<"$h") > first)) || fail "fence did not rise: $first then $h"
	(($(jq -r .lease_left_ms <<<"$h") > 0)) || fail "$h"
	run --separate-stderr "$HELPER" status "$N"
	[[ $output == *"holders:"*"pid "*"fence "*"left"* ]] || fail "$output"
	wait
	value_is "$N" 1
	lib sem_run "$N" sh -c 'echo "$SEM_FENCE"'
	((output > first + 1)) || fail "fence did not rise: $first then $output"
	lib sem_destroy "$N"
}

@test "sem_run: a lost lease stops the command (TERM) before the lease could end, exit 122 with one line" {
	lib sem_init "$N" 1
	local pid
	pid=$("$REDIS_SERVER" pid "$BATS_FILE_TMPDIR/redis")
	export D
	SEM_LEASE=1.5 lib_bg sem_run "$N" bash -c 'trap "echo \"TERM \${EPOCHREALTIME/./}\" >>$D/log; exit 0" TERM; echo "start ${EPOCHREALTIME/./}" >>$D/log; while :; do sleep 0.05; done'
	local job=$! i
	for ((i = 0; i < 250; i++)); do
		grep -q start "$D/log" 2>/dev/null && break
		sleep 0.02
	done
	local cut=${EPOCHREALTIME/./}
	kill -STOP "$pid"
	local rc=0
	wait "$job" || rc=$?
	kill -CONT "$pid"
	((rc == 122)) || fail "sem_run exited $rc"
	local term
	term=$(awk '/^TERM/ { print $2 }' "$D/log")
	[[ -n $term ]] || fail "the command got no SIGTERM: $(cat "$D/log")"
	# SIGTERM at 2/3 of the lease after the last good refresh (at most 1.5 s before the
	# cut): before the lease could end on the server.
	((term - cut < 1500000)) || fail "SIGTERM came $(((term - cut) / 1000)) ms after the cut"
	grep -q 'lease lost' "$BATS_TEST_TMPDIR/bg.err" || fail "no 'lease lost' line: $(cat "$BATS_TEST_TMPDIR/bg.err")"
	[[ $(wc -l <"$BATS_TEST_TMPDIR/bg.err") == 1 ]] || fail "not one line: $(cat "$BATS_TEST_TMPDIR/bg.err")"
	# The lease runs out on the server: the count comes back.
	sleep 1.6
	value_is "$N" 1
	lib sem_destroy "$N"
}

@test "sem_run: a command killed -9 gives its count back at once" {
	lib sem_init "$N" 1
	export D
	SEM_LEASE=2 lib_bg sem_run "$N" sh -c 'echo $$ >"$D/pid"; exec sleep 30'
	wait_for_file "$D/pid"
	value_is "$N" 0
	kill -9 "$(cat "$D/pid")"
	local t0=${EPOCHREALTIME/./}
	wait_for_value "$N" 1 5
	local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	((ms < 1000)) || fail "the count came back after $ms ms"
	wait || true
	lib sem_destroy "$N"
}

@test "sem_hold and sem_release hold a lease and give it back" {
	lib sem_init "$N" 2
	shell "sem_hold -n 2 $N && $HELPER status --json $N | jq -c '[.value, (.holders | length)]' && sleep 1.5 && $HELPER peek $N && sem_release $N && $HELPER peek $N"
	assert_success
	assert_output $'[0,1]\n0\n2'
	lib sem_destroy "$N"
}

@test "quiet start: a server that has just started grants nothing for one lease" {
	local dir=$BATS_TEST_TMPDIR/fresh port
	port=$("$REDIS_SERVER" start "$dir")
	local url=redis://127.0.0.1:$port/q
	SEM_LEASE=2 ok init "$url" 1
	SEM_LEASE=2 run --separate-stderr "$HELPER" trywait "$url"
	assert_failure 1
	local t0=${EPOCHREALTIME/./}
	SEM_LEASE=2 ok wait -w 5 "$url"
	local waited=$(((${EPOCHREALTIME/./} - t0) / 1000))
	((waited > 300)) || fail "granted after $waited ms, within the quiet start"
	SEM_LEASE=2 ok destroy "$url"
	"$REDIS_SERVER" stop "$dir"
}

@test "list redis: lists the names on the server in SEM_REDIS_URL" {
	lib sem_init "$N" 3
	run --separate-stderr "$HELPER" list --json redis:
	assert_success
	jq -e --arg n "${N#redis:}" 'map(select(.name | endswith($n))) | length == 1' <<<"$output" >/dev/null ||
		fail "$output"
	lib sem_destroy "$N"
}
