#!/usr/bin/env bats
# What only Redis names have: their names and server URLs, passwords kept out of sight,
# TLS (rediss://), an unreachable server, leases (SEM_FENCE, holders in status, a lost lease stopping the
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

@test "redis:NAME without SEM_REDIS_URL, and malformed names: one line, exit 2" {
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
	run --separate-stderr "$HELPER" peek rediss:x
	assert_failure 2
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
	SEM_LEASE=2 ok status "$url"
	[[ $output == *"quiet:    the server started less than a lease ago; it grants again in "* ]] || fail "$output"
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

@test "rediss://: TLS, the server's certificate checked against SSL_CERT_FILE (or the system's roots)" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	local t=$BATS_TEST_TMPDIR/tls port pid i
	mkdir -p "$t"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 -subj /CN=sem-test-ca 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$t/srv.key" -out "$t/srv.csr" -subj /CN=localhost 2>/dev/null
	echo 'subjectAltName=DNS:localhost,IP:127.0.0.1' >"$t/ext"
	openssl x509 -req -in "$t/srv.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -out "$t/srv.pem" -days 2 -extfile "$t/ext" 2>/dev/null
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --tls-cert-file "$t/srv.pem" \
		--tls-key-file "$t/srv.key" --tls-ca-cert-file "$t/ca.pem" --tls-auth-clients no \
		--save '' --appendonly no --daemonize yes --pidfile "$t/pid" --logfile "$t/log" --dir "$t"
	for ((i = 0; i < 250; i++)); do
		[[ -s $t/pid ]] && break
		sleep 0.02
	done
	pid=$(<"$t/pid")
	sleep 1.1 # quiet start (SEM_LEASE=1)
	local url=rediss://u:tls-pw@127.0.0.1:$port/t
	redis-cli --tls --cacert "$t/ca.pem" -p "$port" ACL SETUSER u on '>tls-pw' '~*' '+@all' >/dev/null
	SSL_CERT_FILE=$t/ca.pem ok init "$url" 1
	SSL_CERT_FILE=$t/ca.pem run --separate-stderr "$HELPER" run "$url" -- sh -c 'echo "$SEM_FENCE"'
	assert_success
	[[ $output =~ ^[0-9]+$ ]] || fail "$output"
	SSL_CERT_FILE=$t/ca.pem ok status "$url"
	[[ $output == *"server:   rediss://127.0.0.1:$port,"* && $output != *tls-pw* ]] || fail "$output"
	# Without the CA, the certificate is refused: exit 7, one line, no password.
	run --separate-stderr "$HELPER" peek "$url"
	assert_failure 7
	assert_one_line_stderr
	[[ $stderr == *certificate* && $stderr != *tls-pw* ]] || fail "$stderr"
	SSL_CERT_FILE=$t/ca.pem ok destroy "$url"
	kill "$pid"
	poll 5 gone "$pid"
}

@test "a server that stops answering: each call gives up after about 2 s, one line, exit 7" {
	ok init "$N" 0
	local pid t0 ms c
	pid=$("$REDIS_SERVER" pid "$BATS_FILE_TMPDIR/redis")
	kill -STOP "$pid"
	for c in "peek $N" "trywait $N" "post $N" "wait -w 1 $N"; do
		t0=${EPOCHREALTIME/./}
		# shellcheck disable=SC2086 # one word per argument
		run --separate-stderr timeout 10 "$HELPER" $c
		ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
		assert_failure 7
		assert_one_line_stderr
		[[ $stderr == *"no answer from redis://127.0.0.1:$REDIS_PORT within 2.0 s"* ]] || { kill -CONT "$pid"; fail "$c: $stderr"; }
		((ms < 3500)) || { kill -CONT "$pid"; fail "$c took $ms ms"; }
	done
	kill -CONT "$pid"
	ok destroy "$N"
}

@test "timed waits end on time (the server's BLPOP timer is not trusted)" {
	ok init "$N" 0
	local t t0 ms want
	for t in 0.3 0.7; do
		t0=${EPOCHREALTIME/./}
		run --separate-stderr "$HELPER" wait -w "$t" "$N"
		ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
		assert_failure 1
		# The helper's own start-up included; System V is as close.
		want=$((10#${t/./}00))
		((ms >= want && ms < want + 150)) || fail "wait -w $t took $ms ms"
	done
	ok destroy "$N"
}

@test "not a Redis server, a user without a password, an ACL refusal, a missing database: one line, the right code" {
	local port
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1 3>&- &
	local web=$!
	poll 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
	run --separate-stderr "$HELPER" peek "redis://127.0.0.1:$port/x"
	kill "$web"
	assert_failure 7
	assert_one_line_stderr
	run --separate-stderr "$HELPER" peek "redis://someone@127.0.0.1:$REDIS_PORT/x"
	assert_failure 2
	assert_one_line_stderr
	[[ $stderr == *"needs its password"* ]] || fail "$stderr"
	redis_cli ACL SETUSER "rb$BATS_ROOT_PID" on '>pw' '~other:*' '+@all' >/dev/null
	run --separate-stderr "$HELPER" peek "redis://rb$BATS_ROOT_PID:pw@127.0.0.1:$REDIS_PORT/x"
	redis_cli ACL DELUSER "rb$BATS_ROOT_PID" >/dev/null
	assert_failure 4
	assert_one_line_stderr
	[[ $stderr == *"ACL"* ]] || fail "$stderr"
	run --separate-stderr "$HELPER" peek "redis://127.0.0.1:$REDIS_PORT/99/x"
	assert_failure 2
	assert_one_line_stderr
	[[ $stderr == *"has no such database"* ]] || fail "$stderr"
}

@test "a function run by sem_run sees SEM_FENCE for its run only; one whose lease is lost returns 122" {
	lib sem_init "$N" 1
	shell "f() { echo \"in=\${SEM_FENCE:-unset}\"; }; sem_run $N f; echo \"rc=\$? after=\${SEM_FENCE:-unset}\""
	assert_success
	[[ ${lines[0]} =~ ^in=[0-9]+$ && ${lines[1]} == "rc=0 after=unset" ]] || fail "$output"
	local pid
	pid=$("$REDIS_SERVER" pid "$BATS_FILE_TMPDIR/redis")
	SEM_LEASE=1.5 run --separate-stderr timeout 20 bash -c "source \"\$REPO_ROOT/sh/sem.sh\"; f() { kill -STOP $pid; sleep 2.5; kill -CONT $pid; }; sem_run $N f; echo rc=\$?"
	kill -CONT "$pid"
	assert_output "rc=122"
	assert_stderr_one_line
	[[ $stderr == "sem_run: $N: lease lost"* ]] || fail "$stderr"
	sleep 1.6
	value_is "$N" 1
	lib sem_destroy "$N"
}

@test "follow ends with 'destroyed' (status 0) when a Redis name is destroyed, as on System V" {
	ok init "$N" 1
	"$HELPER" follow "$N" >"$D/follow" 2>&1 3>&- &
	local f=$!
	sleep 0.3
	ok destroy "$N"
	local rc=0
	wait "$f" || rc=$?
	((rc == 0)) || fail "follow exited $rc: $(cat "$D/follow")"
	grep -q "destroyed $N" "$D/follow" || fail "$(cat "$D/follow")"
}
