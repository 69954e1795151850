#!/usr/bin/env bats
# POSIX named semaphores shared with other languages: sem.sh and the peer programs in
# tests/interop/ (peer.py: Python's posix_ipc; peer.js: Node, koffi calling libc's
# sem_open) use the same posix:/NAME, glibc's /dev/shm/sem.NAME, and each side sees the
# other's values, wakes the other's waiters, collides with the other's exclusive create
# and sees the other's unlink. Python comes from the private virtualenv that `make bats`
# makes (.venv-test, with posix_ipc), named by SEM_TEST_PYTHON; koffi from its npm folder
# (.node-test), named by SEM_TEST_NODE_PATH. A test whose peer can't run skips, saying why.
#
# Every test uses its own names, ix-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER-*, and removes
# them; teardown removes whatever is left and fails the test if there was something.

load test_helper

eval "helper_$(declare -f setup)"
setup() {
	helper_setup
	PY=${SEM_TEST_PYTHON:-$REPO_ROOT/.venv-test/bin/python}
	NODE_MODULES=${SEM_TEST_NODE_PATH:-$REPO_ROOT/.node-test/node_modules}
	PEER_py=("$PY" "$REPO_ROOT/tests/interop/peer.py")
	PEER_node=(env "NODE_PATH=$NODE_MODULES" node "$REPO_ROOT/tests/interop/peer.js")
	# The bare names (peer.py and peer.js add the slash); sem.sh gets posix:/$A.
	N=ix-$BATS_ROOT_PID-$BATS_SUITE_TEST_NUMBER
	A=$N-a
	B=$N-b
}

eval "helper_$(declare -f teardown)"
teardown() {
	local rc=0 left
	helper_teardown || rc=$?
	left=$(compgen -G "/dev/shm/sem.$N-*") || true
	if [[ -n $left ]]; then
		echo "left behind: $left" >&2
		rm -f "/dev/shm/sem.$N-"*
		rc=1
	fi
	return "$rc"
}

# need PEER: skip unless the peer (py or node) can run here.
need() {
	case $1 in
	py)
		command -v python3 >/dev/null || skip "no python3 on PATH"
		[[ -x $PY ]] || skip "no Python at $PY: run make venv (python3 -m venv, pip install posix_ipc)"
		"$PY" -c 'import posix_ipc' 2>/dev/null || skip "$PY has no posix_ipc: run make venv"
		;;
	node)
		command -v node >/dev/null || skip "no node on PATH"
		NODE_PATH=$NODE_MODULES node -e "require('koffi')" 2>/dev/null ||
			skip "no koffi in $NODE_MODULES: run make node-test (npm install koffi@2)"
		;;
	esac
}

# peer PEER ARGS...: run peer.py (py) or peer.js (node) with ARGS (see their usage).
peer() {
	local -n argv=PEER_$1
	"${argv[@]}" "${@:2}"
}

# start_peer PEER ARGS...: run the peer in the background, its stdout and stderr in
# $D/peer.out and $D/peer.err. Its pid (the Python or Node process itself) is in PEER_PID.
start_peer() {
	local -n argv=PEER_$1
	bg "${argv[@]}" "${@:2}" >"$D/peer.out" 2>"$D/peer.err"
	PEER_PID=$!
}

# glibc_waiters BARE: how many threads glibc counts as blocked in sem_wait or
# sem_timedwait on /dev/shm/sem.BARE: the upper half of the 64-bit word that begins
# glibc's sem_t on 64-bit little-endian machines (the value is the lower half).
glibc_waiters() {
	od -An -tu4 -j4 -N4 "/dev/shm/sem.$1" 2>/dev/null | tr -d ' '
}

# wait_for_glibc_waiters BARE N: poll until N threads are blocked on BARE (10 s at most).
wait_for_glibc_waiters() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[[ $(glibc_waiters "$1") == "$2" ]] && return 0
		sleep 0.01
	done
	fail "expected $2 waiters blocked on /dev/shm/sem.$1, glibc counts '$(glibc_waiters "$1")'"
}

# assert_gone BARE: /dev/shm/sem.BARE does not exist.
assert_gone() {
	[[ ! -e /dev/shm/sem.$1 ]] || fail "/dev/shm/sem.$1 still exists"
}

# assert_soon T END SECONDS: END is at most SECONDS after T (epoch times; END may be
# earlier: a waiter can wake before the peer that posted has exited).
assert_soon() {
	awk -v t="$1" -v e="$2" -v s="$3" 'BEGIN { exit !(e - t <= s) }' ||
		fail "$(awk -v t="$1" -v e="$2" 'BEGIN { printf "%.3f", e - t }') s late, expected at most $3 s"
}

# values_both_ways PEER
values_both_ways() {
	need "$1"
	sem_init "posix:/$A" 2
	run --separate-stderr peer "$1" value "$A"
	assert_success
	assert_output 2
	assert_equal "$stderr" ""
	sem_post "posix:/$A" 3
	run peer "$1" value "$A"
	assert_output 5
	sem_trywait "posix:/$A"
	sem_wait "posix:/$A" 1
	run peer "$1" value "$A"
	assert_output 3
	run --separate-stderr peer "$1" post "$A"
	assert_success
	assert_silent
	run --separate-stderr sem_peek "posix:/$A"
	assert_success
	assert_output 4
	assert_equal "$stderr" ""
	run --separate-stderr sem_peek "posix:$A"
	assert_output 4
	sem_destroy "posix:/$A"

	# Made by the peer, read and taken by sem.sh.
	run --separate-stderr peer "$1" create "$B" 1
	assert_success
	assert_output created
	assert_equal "$stderr" ""
	run --separate-stderr sem_peek "posix:/$B"
	assert_success
	assert_output 1
	run --separate-stderr sem_trywait "posix:/$B"
	assert_success
	assert_silent
	run peer "$1" value "$B"
	assert_output 0
	run --separate-stderr sem_trywait "posix:/$B"
	assert_failure 1
	assert_silent
	sem_post "posix:/$B"
	run --separate-stderr peer "$1" wait "$B" 5
	assert_success
	assert_output $'waiting\ntook'
	run sem_peek "posix:/$B"
	assert_output 0
	run --separate-stderr sem_destroy "posix:/$B"
	assert_success
	assert_silent
	assert_gone "$B"
}

@test "Python and sem.sh see each other's values" {
	values_both_ways py
}

@test "Node and sem.sh see each other's values" {
	values_both_ways node
}

# post_wakes_sem_wait PEER
post_wakes_sem_wait() {
	need "$1"
	local rc end posted
	sem_init "posix:/$A" 0
	bg_wait "$D/w" "posix:/$A"
	wait_for_glibc_waiters "$A" 1
	[[ ! -e $D/w ]] || fail "sem_wait returned before the post: $(cat "$D/w")"
	run --separate-stderr peer "$1" post "$A"
	posted=$(now)
	assert_success
	assert_silent
	await "$D/w" 5
	read -r rc _ end <"$D/w"
	assert_equal "$rc" 0
	assert_soon "$posted" "$end" 1
	assert_waiter_silent "$D/w"
	run sem_peek "posix:/$A"
	assert_output 0
	sem_destroy "posix:/$A"
}

@test "a Python post wakes a blocked sem_wait" {
	post_wakes_sem_wait py
}

@test "a Node post wakes a blocked sem_wait" {
	post_wakes_sem_wait node
}

# sem_post_wakes_peer PEER
sem_post_wakes_peer() {
	need "$1"
	local posted
	sem_init "posix:/$A" 0
	start_peer "$1" wait "$A" 10
	poll 10 grep -qx waiting "$D/peer.out"
	wait_for_glibc_waiters "$A" 1
	posted=$(now)
	sem_post "posix:/$A"
	poll 5 grep -qx took "$D/peer.out"
	assert_soon "$posted" "$(now)" 1
	reap "$PEER_PID"
	assert_equal "$status" 0
	assert_equal "$(cat "$D/peer.out")" $'waiting\ntook'
	assert_equal "$(cat "$D/peer.err")" ""
	run sem_peek "posix:/$A"
	assert_output 0
	sem_destroy "posix:/$A"
}

@test "sem_post wakes a Python waiter blocked in sem_timedwait" {
	sem_post_wakes_peer py
}

@test "sem_post wakes a Node waiter blocked in sem_timedwait" {
	sem_post_wakes_peer node
}

# sem_init_collides PEER: the peer made the name first.
sem_init_collides() {
	need "$1"
	run peer "$1" create "$A" 2
	assert_output created
	run --separate-stderr sem_init "posix:/$A" 5
	assert_failure 1
	assert_one_line_stderr
	assert_regex "$stderr" 'already exists.*a semaphore'
	run sem_peek "posix:/$A"
	assert_output 2
	run peer "$1" value "$A"
	assert_output 2
	run --separate-stderr peer "$1" unlink "$A"
	assert_success
	assert_silent
}

@test "sem_init fails, saying what stands there, when Python made the name first" {
	sem_init_collides py
}

@test "sem_init fails, saying what stands there, when Node made the name first" {
	sem_init_collides node
}

# peer_create_collides PEER: sem_init made the name first.
peer_create_collides() {
	need "$1"
	sem_init "posix:/$A" 3
	run --separate-stderr peer "$1" create "$A" 1
	assert_failure 3
	assert_output exists
	assert_equal "$stderr" ""
	run sem_peek "posix:/$A"
	assert_output 3
	sem_destroy "posix:/$A"
}

@test "Python's O_CREAT|O_EXCL fails on a name sem_init made" {
	peer_create_collides py
}

@test "Node's O_CREAT|O_EXCL fails on a name sem_init made" {
	peer_create_collides node
}

# unlink_ends_sem_wait PEER
unlink_ends_sem_wait() {
	need "$1"
	local rc end unlinked
	sem_init "posix:/$A" 0
	bg_wait "$D/w" "posix:/$A"
	wait_for_glibc_waiters "$A" 1
	run --separate-stderr peer "$1" unlink "$A"
	unlinked=$(now)
	assert_success
	assert_silent
	assert_gone "$A"
	await "$D/w" 5
	read -r rc _ end <"$D/w"
	assert_equal "$rc" 1
	assert_soon "$unlinked" "$end" 1
	assert_waiter_silent "$D/w"
	run --separate-stderr sem_peek "posix:/$A"
	assert_failure 1
	assert_silent
}

@test "a Python unlink ends a blocked sem_wait with 1" {
	unlink_ends_sem_wait py
}

@test "a Node unlink ends a blocked sem_wait with 1" {
	unlink_ends_sem_wait node
}

# destroy_seen PEER
destroy_seen() {
	need "$1"
	sem_init "posix:/$A" 1
	run peer "$1" value "$A"
	assert_output 1
	run --separate-stderr sem_destroy "posix:/$A"
	assert_success
	assert_silent
	assert_gone "$A"
	run --separate-stderr peer "$1" value "$A"
	assert_failure 1
	assert_output ""
	assert_stderr_one_line
	assert_regex "$stderr" "^sem_open /$A: "
}

@test "after sem_destroy, Python's sem_open fails" {
	destroy_seen py
}

@test "after sem_destroy, Node's sem_open fails" {
	destroy_seen node
}

@test "sem_run holds a count that Python and Node see, and gives it back" {
	need py
	need node
	sem_init "posix:/$A" 2
	run --separate-stderr sem_run "posix:/$A" "${PEER_py[@]}" value "$A"
	assert_success
	assert_output 1
	assert_equal "$stderr" ""
	run --separate-stderr sem_run "posix:/$A" "${PEER_node[@]}" value "$A"
	assert_success
	assert_output 1
	run peer py value "$A"
	assert_output 2
	sem_destroy "posix:/$A"
}

@test "sem_init MODE 0600 makes a file of ours, mode 0600, that Python opens" {
	need py
	sem_init "posix:/$A" 1 0600
	run stat -c '%a %u %g' "/dev/shm/sem.$A"
	assert_output "600 $(id -u) $(id -g)"
	run --separate-stderr peer py value "$A"
	assert_success
	assert_output 1
	assert_equal "$stderr" ""
	run peer py post "$A"
	assert_success
	run sem_peek "posix:/$A"
	assert_output 2
	sem_destroy "posix:/$A"
}

# readme_block TAG LANG: the ```LANG block on the line after `<!-- recipe: TAG -->` in
# README.md, exactly.
readme_block() {
	awk -v tag="<!-- recipe: $1 -->" -v open="\`\`\`$2" '
		$0 == tag { f = 1; next }
		f == 1 { if ($0 != open) exit 2; f = 2; next }
		f == 2 && $0 == "```" { f = 3; exit }
		f == 2 { print }
		END { if (f != 3) exit 2 }' "$REPO_ROOT/README.md" ||
		fail "README.md has no \`\`\`$2 block after <!-- recipe: $1 -->"
}

@test "the README's posix_ipc example runs as written" {
	# With two edits: the name /build-slots becomes this test's, and the line marked
	# "# your command" prints the value seen inside the `with` (the count taken).
	need py
	local text line n_name=0 n_cmd=0
	text=$(readme_block python-posix python)
	while IFS= read -r line; do
		if [[ $line == *'# your command' ]]; then
			line="    print(\"inside\", sem.value, flush=True)"
			n_cmd=$((n_cmd + 1))
		elif [[ $line == *'"/build-slots"'* ]]; then
			line=${line//\"\/build-slots\"/\"\/$A\"}
			n_name=$((n_name + 1))
		fi
		printf '%s\n' "$line"
	done <<<"$text" >"$D/example.py"
	assert_equal "$n_name/$n_cmd" 1/1
	sem_init "posix:/$A" 2
	run --separate-stderr "$PY" "$D/example.py"
	assert_success
	assert_output "inside 1"
	assert_equal "$stderr" ""
	run sem_peek "posix:/$A"
	assert_output 2
	sem_destroy "posix:/$A"
}

@test "the README's koffi snippet runs as written" {
	# With one edit: the name '/build-slots' becomes this test's.
	need node
	local text line n_name=0
	text=$(readme_block node-posix js)
	while IFS= read -r line; do
		if [[ $line == *"'/build-slots'"* ]]; then
			line=${line//\'\/build-slots\'/\'\/$A\'}
			n_name=$((n_name + 1))
		fi
		printf '%s\n' "$line"
	done <<<"$text" >"$D/example.js"
	assert_equal "$n_name" 1
	sem_init "posix:/$A" 2
	NODE_PATH=$NODE_MODULES run --separate-stderr node "$D/example.js"
	assert_success
	assert_silent
	run sem_peek "posix:/$A"
	assert_output 3
	sem_destroy "posix:/$A"
}
