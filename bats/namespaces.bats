#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand in the child
# shellcheck disable=SC2154 # bats run sets stderr
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# Two IPC namespaces sharing a directory (containers sharing /tmp). A record made in
# another IPC namespace of this boot may be live there: it is neither used nor reclaimed
# from here (exit 3 for operations, 6 for init), its owner may replace it
# (init --force), and prune removes it once its namespace is provably gone. The suite's
# own namespace is "A"; "B" is a nested `unshare --ipc`.

load test_helper

# The suite's teardown, kept to be called after ours.
eval "common_$(declare -f teardown)"

setup_file() {
	if [[ $(id -u) != 0 ]] || ! unshare --ipc true 2>/dev/null; then
		export NS_SKIP="needs root and unshare --ipc"
	fi
}

# require_unshare: skip unless nested IPC namespaces can be made.
require_unshare() {
	[[ -z ${NS_SKIP:-} ]] || skip "$NS_SKIP"
}

# ns_of PID: PID's IPC namespace inode.
ns_of() {
	readlink "/proc/$1/ns/ipc" | tr -dc 0-9
}

# start_b: start a process that keeps a namespace B alive; its pid in B_PID.
start_b() {
	unshare --ipc sleep 600 3>&- &
	B_PID=$!
	local i
	for ((i = 0; i < 500; i++)); do
		if [[ -e /proc/$B_PID/ns/ipc && $(ns_of "$B_PID") != "$(ns_of $$)" ]]; then
			return 0
		fi
		sleep 0.01
	done
	fail "no new IPC namespace for pid $B_PID"
}

# in_b CMD...: run CMD in namespace B.
in_b() {
	nsenter --ipc --target "$B_PID" -- "$@"
}

# in_b_sem FUNC ARGS...: run a sem_* function in namespace B, with sem.sh sourced.
in_b_sem() {
	in_b bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@"
}

# Destroy B's semaphores from inside B, check that it holds no set, then end it; then the
# suite's teardown (records, and the leak check in A).
teardown() {
	local leaked='' f
	if [[ -n ${B_PID:-} ]] && kill -0 "$B_PID" 2>/dev/null; then
		while IFS= read -r -d '' f; do
			in_b "$HELPER" destroy "$f" 2>/dev/null || true
		done < <(find "$BATS_TEST_TMPDIR" -type f -print0 2>/dev/null)
		leaked=$(in_b ipcs -s | awk '$2 ~ /^[0-9]+$/ { print $2 }')
		kill "$B_PID" 2>/dev/null || true
		wait "$B_PID" 2>/dev/null || true
	fi
	common_teardown
	if [[ -n $leaked ]]; then
		echo "leaked kernel sets in namespace B (ids): $leaked" >&2
		return 1
	fi
}

# all_tasks_visible: whether this process can read every task's IPC namespace, the
# condition for proving that a namespace is gone.
all_tasks_visible() {
	[[ $(readlink /proc/self/ns/pid) == 'pid:[4026531836]' ]] || return 1
	local f
	for f in /proc/[0-9]*/task/*/ns/ipc; do
		# A task that ended meanwhile proves nothing either way.
		if ! readlink "$f" >/dev/null 2>&1 && [[ -e ${f%/ns/ipc} ]]; then
			return 1
		fi
	done
	return 0
}

@test "B's init on A's live name fails with 6, naming both namespaces; A's semaphore is untouched" {
	require_unshare
	sem_init "$D/s" 2
	local before a
	before=$(cat "$D/s")
	a=$(ns_of $$)
	run --separate-stderr unshare --ipc "$HELPER" init "$D/s" 5
	assert_failure 6
	assert_one_line_stderr
	[[ $stderr == "semctl-helper: init: $D/s: the semaphore lives in another IPC namespace (ipc:[$a]; this process is in ipc:["*"])"* ]] ||
		fail "unexpected message: $stderr"
	[[ $stderr == *"destroy it from there"* ]] || fail "the way out is not named: $stderr"
	assert_equal "$(cat "$D/s")" "$before"
	run sem_peek "$D/s"
	assert_output 2
	# sem.sh: 1 and one line.
	run --separate-stderr unshare --ipc bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_init "$1" 5' _ "$D/s"
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(cat "$D/s")" "$before"
}

@test "B can't post, wait, trywait, peek, relax, run, hold or destroy A's live name; A keeps working" {
	require_unshare
	sem_init "$D/s" 2
	local a verb
	a=$(ns_of $$)
	for verb in post trywait peek relax destroy; do
		run --separate-stderr unshare --ipc "$HELPER" "$verb" "$D/s"
		assert_failure 3
		assert_one_line_stderr
		[[ $stderr == "semctl-helper: $verb: $D/s: the semaphore lives in another IPC namespace (ipc:[$a]; this process is in ipc:["*"])"* ]] ||
			fail "$verb: unexpected message: $stderr"
	done
	run --separate-stderr unshare --ipc "$HELPER" wait "$D/s" 5
	assert_failure 3
	assert_one_line_stderr
	# run's own failures are 125, as for env(1); the program never ran.
	run --separate-stderr unshare --ipc "$HELPER" run "$D/s" -- echo ran
	assert_failure 125
	assert_one_line_stderr
	[[ $stderr == *"another IPC namespace"* ]] || fail "run: $stderr"
	# sem.sh keeps its contract: 1, silent where silent.
	local f
	for f in sem_post sem_wait sem_trywait sem_peek sem_relax; do
		run --separate-stderr unshare --ipc bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$f" "$D/s"
		assert_failure 1
		assert_silent
	done
	run --separate-stderr unshare --ipc bash -c 'source "$REPO_ROOT/sh/sem.sh"; SEM_VERBOSE=1 sem_post "$1"' _ "$D/s"
	assert_failure 1
	[[ $stderr == *"lives in another IPC namespace (ipc:[$a]"* ]] || fail "$stderr"
	# A's semaphore is as it was, and works.
	run sem_peek "$D/s"
	assert_output 2
	sem_post "$D/s"
	sem_wait "$D/s" 1
	run sem_peek "$D/s"
	assert_output 2
}

@test "a holder in B gets no count of A's semaphore" {
	require_unshare
	sem_init "$D/s" 1
	# hold ends at end of file on stdin: keep it open until the answer is in.
	run --separate-stderr unshare --ipc bash -c '"$1" hold -w 1 "$2" < <(sleep 3 2>/dev/null) | cat' _ "$HELPER" "$D/s"
	assert_output "no 3"
	run sem_peek "$D/s"
	assert_output 1
}

@test "status and list show A's record from B as other-namespace (text and JSON)" {
	require_unshare
	sem_init "$D/s" 2
	local a
	a=$(ns_of $$)
	run --separate-stderr unshare --ipc "$HELPER" status "$D/s"
	assert_failure 3
	assert_equal "$stderr" ""
	assert_line --index 0 "$D/s: in another IPC namespace"
	assert_output --partial "ipc:[$a]"
	assert_output --partial "sem_init --force"
	run --separate-stderr unshare --ipc "$HELPER" status --json "$D/s"
	assert_failure 3
	assert_equal "$stderr" ""
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["state"] == "other-namespace", d
assert d["ipcns"] == int(sys.argv[2]), d
assert d["stale"] is False and d["access"] is False, d
assert d["value"] is None and d["group"] is None, d
assert "another IPC namespace" in d["reason"], d
' "$output" "$a" || fail "unexpected JSON: $output"
	run --separate-stderr unshare --ipc "$HELPER" list "$D"
	assert_success
	assert_line --regexp "^$D/s +- +- +other-namespace\$"
	run --separate-stderr unshare --ipc "$HELPER" list --json "$D"
	assert_success
	python3 -c '
import json, sys
[d] = json.loads(sys.argv[1])
assert d["state"] == "other-namespace" and d["ipcns"] == int(sys.argv[2]), d
' "$output" "$a" || fail "unexpected JSON: $output"
	# From A it is live, in A's namespace.
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["state"] == "live" and d["ipcns"] == int(sys.argv[2]), d
' "$output" "$a" || fail "unexpected JSON: $output"
	# sem_status: 1 after describing it.
	run --separate-stderr unshare --ipc bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_status "$1"' _ "$D/s"
	assert_failure 1
	assert_line --index 0 "$D/s: in another IPC namespace"
}

@test "init --force is refused while the other namespace is seen in use; once it ended, it replaces the name" {
	require_unshare
	start_b
	sem_init "$D/s" 2
	local id
	id=$(set_id "$D/s")
	run --separate-stderr in_b "$HELPER" init "$D/s" 5
	assert_failure 6
	# Replacing A's record from B would leave A's set without a name for as long as A
	# lives: refused, saying where to go.
	run --separate-stderr in_b_sem sem_init --force "$D/s" 5
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *"where processes still run: use it or destroy it from there"* ]] || fail "$stderr"
	assert_set_exists "$id"
	run sem_peek "$D/s"
	assert_output 2
	# A record of a namespace that has ended (its set died with it): --force replaces it,
	# or, when every process can be seen, it is stale and init reclaims it anyway.
	unshare --ipc "$HELPER" init "$D/g" 1
	run --separate-stderr sem_init --force "$D/g" 3
	assert_success
	assert_silent
	run sem_peek "$D/g"
	assert_output 3
	# --force never touches a live record of its own namespace.
	run --separate-stderr "$HELPER" init --force "$D/s" 7
	assert_failure 6
	run sem_peek "$D/s"
	assert_output 2
}

@test "another uid can't force-replace a record from another namespace" {
	require_unshare
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 2 0666
	local before
	before=$(cat "$D/pub/s")
	run --separate-stderr unshare --ipc setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		"$HELPER" init --force "$D/pub/s" 1
	assert_failure 6
	assert_one_line_stderr
	[[ $stderr == *"only its owner, uid 0"* ]] || fail "$stderr"
	assert_equal "$(cat "$D/pub/s")" "$before"
	run sem_peek "$D/pub/s"
	assert_output 2
}

@test "prune removes the caller's record of a namespace that is gone; init reclaims one" {
	require_unshare
	all_tasks_visible || skip "some task's IPC namespace is hidden even from root here, so none can be proved gone"
	unshare --ipc "$HELPER" init "$D/g" 1
	unshare --ipc "$HELPER" init "$D/h" 1
	local g
	g=$(sed -n 's/.* ipcns=\([0-9]*\).*/\1/p' "$D/g")
	run --separate-stderr "$HELPER" status --json "$D/g"
	assert_failure 3
	[[ $output == *'"state":"stale"'* ]] || fail "$output"
	run --separate-stderr "$HELPER" prune "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_line "removed $D/g: stale: the record is from IPC namespace ipc:[$g], which is gone"
	[[ ! -e $D/g && ! -e $D/h ]]
	unshare --ipc "$HELPER" init "$D/h" 1
	run --separate-stderr sem_init "$D/h" 3
	assert_success
	run sem_peek "$D/h"
	assert_output 3
}

@test "prune keeps a record whose namespace lives, silently, and B still uses it" {
	require_unshare
	start_b
	in_b "$HELPER" init "$D/k" 4
	run --separate-stderr "$HELPER" prune "$D"
	assert_success
	assert_silent
	[[ -f $D/k ]]
	run in_b "$HELPER" peek "$D/k"
	assert_output 4
}

@test "prune by a user who can't see every process keeps the record and says so" {
	require_unshare
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	# nobody's record, made in a namespace that is gone when unshare exits.
	unshare --ipc setpriv --reuid=65534 --regid=65534 --clear-groups -- "$HELPER" init "$D/pub/n" 1
	local n
	n=$(sed -n 's/.* ipcns=\([0-9]*\).*/\1/p' "$D/pub/n")
	run --separate-stderr as_nobody "$HELPER" prune "$D/pub"
	assert_success
	assert_equal "$stderr" ""
	assert_output --partial "kept $D/pub/n: its IPC namespace ipc:[$n] may still be in use"
	assert_output --partial "sem_init --force $D/pub/n VALUE"
	[[ -f $D/pub/n ]]
	# Its owner may still replace it deliberately.
	run --separate-stderr as_nobody "$HELPER" init --force "$D/pub/n" 2
	assert_success
	run as_nobody "$HELPER" peek "$D/pub/n"
	assert_output 2
}
