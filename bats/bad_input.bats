#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# Bad and hostile input, one case per test: names, values, post counts, timeouts, modes,
# argument counts and record files. Every case runs through the helper, which must exit
# with the code the README's table gives, and through the sem.sh function, which must
# return 1. The helper, sem_init and sem_destroy print one line on stderr; post, wait,
# trywait and peek print nothing, and the helper's line with SEM_VERBOSE=1. No case may
# panic, hang, or change anything on disk or in the kernel, except where the README says
# so (destroy and init on a stale name of one's own: see stale_case).

load test_helper

# The prefix every command of a case runs under: setpriv's, for cases as uid 65534.
AS=()
# Paths outside the test's directory that a case must leave unchanged too.
EXTRA=()

# Sets made with ipcmk, and directories made read-only, for teardown to undo should the
# test fail half-way (the test_helper's teardown then destroys records and checks leaks).
IPCMK_IDS=()
READONLY_DIRS=()
eval "helper_$(declare -f teardown)"
teardown() {
	local x
	for x in "${READONLY_DIRS[@]}"; do chmod u+w "$x"; done
	for x in "${IPCMK_IDS[@]}"; do ipcrm -s "$x" 2>/dev/null || true; done
	helper_teardown
}

# ipcmk_set NSEMS: make a set of NSEMS semaphores with ipcmk; its id in $SET.
ipcmk_set() {
	SET=$(ipcmk -S "$1" | awk '{ print $NF }')
	IPCMK_IDS+=("$SET")
}

# snapshot: what a case must leave unchanged: every file in the test's directories
# (type, mode, owners, size, inode, links, mtime and ctime to the nanosecond), the EXTRA
# paths, and every kernel set (`ipcs -s -i`: owner, mode, value, times, last pid).
# Outside a private IPC namespace other processes' sets come and go, so there only the
# sets this test made.
snapshot() {
	find "$D" "$HOME" -printf '%p %y %m %U %G %s %i %n %T@ %C@\n' 2>/dev/null | LC_ALL=C sort
	if ((${#EXTRA[@]})); then
		stat -c '%n %F %a %u %g %s %i %h %Y %Z' -- "${EXTRA[@]}"
	fi
	kernel_snapshot
}

kernel_snapshot() {
	local ids id
	ids=$(kernel_sets)
	if [[ ${SEM_TEST_PRIVATE_IPC:-} != 1 ]]; then
		ids=$(comm -13 <(echo "$SETS_BEFORE") <(echo "$ids"))
	fi
	for id in $ids; do
		ipcs -s -i "$id"
	done
}

# assert_unchanged BEFORE: the snapshot now is BEFORE.
assert_unchanged() {
	local after diff
	after=$(snapshot)
	if ! diff=$(diff <(echo "$1") <(echo "$after")); then
		fail "the case changed something on disk or in the kernel:"$'\n'"$diff"
	fi
}

# capture CMD...: run CMD under a 10 s limit, putting its status, stdout and stderr in
# status, output and stderr as `run --separate-stderr` would (more cheaply: a case runs up
# to twenty commands), and check that it neither hung nor panicked.
capture() {
	status=0
	output=$(timeout 10 "$@" 2>"$BATS_TEST_TMPDIR/stderr") || status=$?
	stderr=$(<"$BATS_TEST_TMPDIR/stderr")
	((status != 124)) || fail "hung: $* was killed after 10 s"
	[[ $stderr != *panicked* && $output != *panicked* ]] || fail "panicked: $stderr"
}

# helper_says CODE VERB ARG...: `semctl-helper VERB ARG...` exits CODE with nothing on
# stdout and one line on stderr that starts with "semctl-helper: VERB: "; the line is kept
# in HELPER_LINE.
helper_says() {
	local code=$1 verb=$2
	shift 2
	capture "${AS[@]}" "$HELPER" "$verb" "$@"
	assert_failure "$code"
	assert_output ''
	assert_stderr_one_line
	[[ $stderr == "semctl-helper: $verb: "* ]] ||
		fail "stderr does not start with 'semctl-helper: $verb: ': $stderr"
	HELPER_LINE=$stderr
}

# lib_run VERBOSE FUNC ARG...: run sem.sh's FUNC in a fresh bash with SEM_VERBOSE=VERBOSE.
lib_run() {
	SEM_VERBOSE=$1 capture "${AS[@]}" bash -c 'source "$0"; "$@"' "$REPO_ROOT/sh/sem.sh" "${@:2}"
}

# lib_says FUNC ARG...: FUNC returns 1 with nothing on stdout. sem_init and sem_destroy
# print the helper's line; the others print nothing, and the helper's line with
# SEM_VERBOSE=1.
lib_says() {
	local f=$1
	lib_run '' "$@"
	assert_failure 1
	assert_output ''
	if [[ $f == sem_init || $f == sem_destroy ]]; then
		assert_equal "$stderr" "$HELPER_LINE"
		return
	fi
	assert_equal "$stderr" ''
	lib_run 1 "$@"
	assert_failure 1
	assert_output ''
	assert_equal "$stderr" "$HELPER_LINE"
}

# refused CODE VERB ARG...: the helper exits CODE and sem_VERB returns 1, as above, and
# neither changes anything.
refused() {
	local before
	before=$(snapshot)
	refused_unchecked "$@"
	assert_unchanged "$before"
}

# refused_unchecked CODE VERB ARG...: refused, but leaving the snapshots to the caller.
refused_unchecked() {
	local code=$1 verb=$2
	shift 2
	helper_says "$code" "$verb" "$@"
	lib_says "sem_$verb" "$@"
}

# refused_quietly NAME CODE: post, wait (without a timeout: it must not block), trywait
# and peek, then nothing changed.
refused_quietly() {
	local verb before
	before=$(snapshot)
	for verb in post wait trywait peek; do
		refused_unchecked "$2" "$verb" "$1"
	done
	assert_unchanged "$before"
}

# refused_by_all NAME CODE INIT_CODE DESTROY_CODE: every verb, init and destroy included,
# then nothing changed.
refused_by_all() {
	local before
	before=$(snapshot)
	refused_quietly "$1" "$2"
	refused_unchecked "$3" init "$1" 1
	refused_unchecked "$4" destroy "$1"
	assert_unchanged "$before"
}

# as_uid_65534: run the rest of the case as uid 65534, or skip.
as_uid_65534() {
	reachable_by_nobody
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
}

# record KEY ID: a well-formed record line for this boot and IPC namespace.
record() {
	local ns
	ns=$(readlink /proc/self/ns/ipc)
	printf 'sem/1 key=0x%08x id=%s boot=%s ipcns=%s\n' "$1" "$2" \
		"$(cat /proc/sys/kernel/random/boot_id)" "${ns//[!0-9]/}"
}

# key_of ID: the key of kernel set ID.
key_of() {
	ipcs -s | awk -v id="$1" '$2 == id { print $1 }'
}

# stale_case LINE: a file of ours at $D/s holding LINE, a well-formed but stale or
# untrusted record. post, wait, trywait and peek exit 3 (return 1) and change nothing. As the
# README says of a stale name you own: destroy removes the file and returns 0, silently,
# touching no set; init reclaims the name with a new set, touching no other set.
stale_case() {
	local line=$1 kernel how
	printf '%s\n' "$line" >"$D/s"
	refused_quietly "$D/s" 3
	for how in helper lib; do
		printf '%s\n' "$line" >"$D/s"
		kernel=$(kernel_snapshot)
		via "$how" destroy "$D/s"
		assert_success
		assert_silent
		[[ ! -e $D/s ]] || fail "destroy ($how) left the stale file"
		assert_equal "$(kernel_snapshot)" "$kernel"
	done
	for how in helper lib; do
		printf '%s\n' "$line" >"$D/s"
		kernel=$(kernel_snapshot)
		via "$how" init "$D/s" 7
		assert_success
		assert_silent
		run sem_peek "$D/s"
		assert_output 7
		sem_destroy "$D/s"
		# The reclaiming set is gone again; every other set is as it was.
		assert_equal "$(kernel_snapshot)" "$kernel"
	done
}

# via helper|lib VERB ARG...: run `semctl-helper VERB` or sem_VERB (SEM_VERBOSE unset).
via() {
	local how=$1 verb=$2
	shift 2
	if [[ $how == helper ]]; then
		capture "${AS[@]}" "$HELPER" "$verb" "$@"
	else
		lib_run '' "sem_$verb" "$@"
	fi
}

# --- names ---

@test "name: empty" {
	refused_by_all '' 2 2 2
}

@test "name: /" {
	refused_by_all / 2 2 2
}

@test "name: a trailing slash" {
	refused_by_all "$D/s/" 2 2 2
}

@test "name: a trailing slash after a live semaphore's name" {
	sem_init "$D/s" 1
	refused_by_all "$D/s/" 2 2 2
}

@test "name: the last component is ." {
	refused_by_all "$D/." 2 2 2
}

@test "name: the last component is .." {
	refused_by_all "$D/s/.." 2 2 2
}

@test "name: a relative .." {
	refused_by_all .. 2 2 2
}

@test "name: a directory" {
	mkdir "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "name: a symlink to a valid record" {
	sem_init "$D/real" 2
	ln -s real "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "name: a symlink to nothing" {
	ln -s "$D/nowhere" "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "name: a symlink to itself" {
	ln -s s "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "name: a FIFO (nothing may block on it)" {
	mkfifo "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "name: the device node /dev/null" {
	EXTRA=(/dev/null)
	refused_by_all /dev/null 3 6 3
}

@test "name: the device node /dev/zero" {
	EXTRA=(/dev/zero)
	refused_by_all /dev/zero 3 6 3
}

@test "name: a device node in the directory" {
	mknod "$D/s" c 1 5 2>/dev/null || skip "cannot make device nodes here"
	refused_by_all "$D/s" 3 6 3
}

@test "name: a proc file (regular, size 0, not a record)" {
	refused_by_all /proc/version 3 6 3
}

@test "name: a last component of 4096 bytes" {
	refused_by_all "$D/$(printf 'n%.0s' {1..4096})" 2 2 2
}

@test "name: a path of 4600 bytes, beyond PATH_MAX" {
	refused_by_all "$D/$(printf 'dir/%.0s' {1..1150})s" 2 2 2
}

@test "name: a missing parent" {
	refused_by_all "$D/missing/s" 3 3 3
}

@test "name: a parent that is a regular file" {
	: >"$D/file"
	refused_by_all "$D/file/s" 3 3 3
}

@test "name: a parent that is a FIFO" {
	mkfifo "$D/fifo"
	refused_by_all "$D/fifo/s" 3 3 3
}

@test "name: a parent that is a symlink to nothing" {
	ln -s "$D/nowhere" "$D/link"
	refused_by_all "$D/link/s" 3 3 3
}

@test "name: a parent that is /dev/null" {
	EXTRA=(/dev/null)
	refused_by_all /dev/null/s 3 3 3
}

@test "name: a newline and invalid UTF-8 in it still give one line" {
	refused_by_all "$D/missing"$'\n'"line/s"$'\xff' 3 3 3
	[[ $HELPER_LINE == *'\n'* ]] || fail "the newline is not escaped: $HELPER_LINE"
}

@test "name: relative, with HOME a missing directory" {
	export HOME=$D/gone
	refused_by_all rel 3 3 3
}

@test "name: in a directory uid 65534 may not write: init 4, the others 3" {
	as_uid_65534
	mkdir "$D/ro"
	refused_by_all "$D/ro/s" 3 4 3
}

@test "name: in a directory uid 65534 may not search: 4" {
	as_uid_65534
	mkdir -m 0700 "$D/closed"
	refused_by_all "$D/closed/s" 4 4 4
}

@test "name: a record uid 65534 may not read: 4" {
	as_uid_65534
	sem_init "$D/s" 1
	refused_by_all "$D/s" 4 4 4
}

@test "name: uid 65534's semaphore in its directory made read-only: destroy 4, init 6" {
	as_uid_65534
	mkdir "$D/ro"
	chown 65534 "$D/ro"
	as_nobody "$HELPER" init "$D/ro/s" 1
	chmod 0555 "$D/ro"
	READONLY_DIRS+=("$D/ro")
	refused 4 destroy "$D/ro/s"
	refused 6 init "$D/ro/s" 1
}

@test "name: uid 65534's stale record in its read-only directory: destroy and init 4" {
	as_uid_65534
	mkdir "$D/ro"
	chown 65534 "$D/ro"
	as_nobody "$HELPER" init "$D/ro/s" 1
	ipcrm -s "$(set_id "$D/ro/s")"
	chmod 0555 "$D/ro"
	READONLY_DIRS+=("$D/ro")
	refused 4 destroy "$D/ro/s"
	refused 4 init "$D/ro/s" 1
}

# --- values: decimal digits only, 0 to 32767 ---

# value_refused CODE VALUE: init with VALUE exits CODE and leaves nothing.
value_refused() {
	refused "$1" init "$D/v" "$2"
}

@test "value: empty" {
	value_refused 2 ''
}

@test "value: -1" {
	value_refused 2 -1
}

@test "value: -0" {
	value_refused 2 -0
}

@test "value: 1.5" {
	value_refused 2 1.5
}

@test "value: 0x10" {
	value_refused 2 0x10
}

@test "value: 1e3" {
	value_refused 2 1e3
}

@test "value: 32768, with a message naming the limit" {
	value_refused 5 32768
	[[ $HELPER_LINE == *32767* ]] || fail "the message does not name 32767: $HELPER_LINE"
}

@test "value: 65537 (wraps to 1 in 16 bits)" {
	value_refused 5 65537
}

@test "value: 99999999999999999999" {
	value_refused 5 99999999999999999999
}

@test "value: a leading space" {
	value_refused 2 ' 1'
}

@test "value: a trailing space" {
	value_refused 2 '1 '
}

@test "value: a trailing newline" {
	value_refused 2 $'1\n'
}

@test "value: +1" {
	value_refused 2 +1
}

@test "value: a non-ASCII digit" {
	value_refused 2 '１'
}

# --- post counts (post NAME N): decimal digits, 1 to 32767 ---

# post_count_refused CODE N: post N on a semaphore of value 1 exits CODE and adds nothing.
post_count_refused() {
	sem_init "$D/p" 1
	refused "$1" post "$D/p" "$2"
	run sem_peek "$D/p"
	assert_output 1
}

@test "post count: 0" {
	post_count_refused 2 0
}

@test "post count: -1" {
	post_count_refused 2 -1
}

@test "post count: 1.5" {
	post_count_refused 2 1.5
}

@test "post count: 32768" {
	post_count_refused 5 32768
}

@test "post count: empty" {
	post_count_refused 2 ''
}

# --- timeouts: seconds, fractions allowed; no nan, inf, exponent or sign but - ---

# timeout_refused CODE TIMEOUT: wait with TIMEOUT on a semaphore of value 1 exits CODE and
# takes nothing (which the snapshot of the kernel would show).
timeout_refused() {
	sem_init "$D/t" 1
	refused "$1" wait "$D/t" "$2"
	run sem_peek "$D/t"
	assert_output 1
}

@test "timeout: abc" {
	timeout_refused 2 abc
}

@test "timeout: nan" {
	timeout_refused 2 nan
}

@test "timeout: inf" {
	timeout_refused 2 inf
}

@test "timeout: -inf" {
	timeout_refused 2 -inf
}

@test "timeout: 1e3" {
	timeout_refused 2 1e3
}

@test "timeout: --1" {
	timeout_refused 2 --1
}

@test "timeout: +1" {
	timeout_refused 2 +1
}

@test "timeout: empty" {
	timeout_refused 2 ''
}

@test "timeout: a leading space" {
	timeout_refused 2 ' 1'
}

@test "timeout: a unit (1s)" {
	timeout_refused 2 1s
}

@test "timeout: a decimal comma (1,5)" {
	timeout_refused 2 1,5
}

@test "timeout: two dots" {
	timeout_refused 2 1.2.3
}

@test "timeout: 0x1" {
	timeout_refused 2 0x1
}

@test "timeout: 4294967296 s, one beyond the limit" {
	timeout_refused 5 4294967296
}

@test "timeout: 99999999999999999999" {
	timeout_refused 5 99999999999999999999
}

# --- modes: octal permissions, at most 0777, the owner's read and write included ---

@test "mode: 999" {
	refused 2 init "$D/m" 1 999
}

@test "mode: 0o600" {
	refused 2 init "$D/m" 1 0o600
}

@test "mode: -1" {
	refused 2 init "$D/m" 1 -1
}

@test "mode: empty" {
	refused 2 init "$D/m" 1 ''
}

@test "mode: 0400 (the owner can't post)" {
	refused 2 init "$D/m" 1 0400
}

@test "mode: 1777 (a sticky bit)" {
	refused 2 init "$D/m" 1 1777
}

@test "mode: 06600 (set-id bits)" {
	refused 2 init "$D/m" 1 06600
}

@test "mode: rw" {
	refused 2 init "$D/m" 1 rw
}

@test "mode: 0600 and junk" {
	refused 2 init "$D/m" 1 0600x
}

# --- argument counts ---

# count_refused FUNC ARG...: the helper exits 2 with one line; FUNC returns 1 and prints
# its usage line (init and destroy always, the others with SEM_VERBOSE=1 only).
count_refused() {
	local f=$1 before
	shift
	before=$(snapshot)
	capture "$HELPER" "${f#sem_}" "$@"
	assert_failure 2
	assert_output ''
	assert_stderr_one_line
	[[ $stderr == "semctl-helper: "* ]] || fail "stderr does not name the helper: $stderr"
	lib_run '' "$f" "$@"
	assert_failure 1
	assert_output ''
	if [[ $f != sem_init && $f != sem_destroy ]]; then
		assert_equal "$stderr" ''
		lib_run 1 "$f" "$@"
		assert_failure 1
		assert_output ''
	fi
	assert_stderr_one_line
	[[ $stderr == "usage: $f "* ]] || fail "$f: not its usage line: $stderr"
	assert_unchanged "$before"
}

@test "arguments: none" {
	local f
	for f in sem_init sem_post sem_wait sem_trywait sem_peek sem_destroy; do
		count_refused "$f"
	done
}

@test "arguments: one too many" {
	sem_init "$D/s" 1
	count_refused sem_init "$D/x" 1 0600 extra
	count_refused sem_post "$D/s" 1 extra
	count_refused sem_wait "$D/s" 1 extra
	count_refused sem_trywait "$D/s" extra
	count_refused sem_peek "$D/s" extra
	count_refused sem_destroy "$D/s" extra
}

@test "arguments: init without a value" {
	count_refused sem_init "$D/x"
}

# --- record files ---

@test "record: an empty file" {
	: >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a valid record without its newline" {
	record 0x5f3a9c21 1 | tr -d '\n' >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: truncated in the middle" {
	record 0x5f3a9c21 1 | head -c 40 >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: random bytes" {
	head -c 200 /dev/urandom >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: NUL bytes" {
	head -c 100 /dev/zero >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a CRLF line end" {
	record 0x5f3a9c21 1 | sed 's/$/\r/' >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: two records" {
	sem_init "$D/live" 1
	cat "$D/live" "$D/live" >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a live record with a trailing space" {
	sem_init "$D/live" 1
	sed 's/$/ /' "$D/live" >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a live record with its key in uppercase" {
	sem_init "$D/live" 1
	sed 's/key=0x\([0-9a-f]*\)/key=0x\U\1/' "$D/live" >"$D/s"
	grep -q 'key=0x[0-9A-F]*[A-F]' "$D/s" || skip "the key has no hex letter"
	refused_by_all "$D/s" 3 6 3
}

@test "record: key 0 (IPC_PRIVATE)" {
	record 0 0 >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a valid record of format version sem/2" {
	sem_init "$D/live" 1
	sed 's|^sem/1 |sem/2 |' "$D/live" >"$D/s"
	refused_by_all "$D/s" 3 6 3
	[[ $HELPER_LINE == *version* ]] || fail "the message does not name the version: $HELPER_LINE"
}

@test "record: format version sem/01" {
	sem_init "$D/live" 1
	sed 's|^sem/1 |sem/01 |' "$D/live" >"$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a live record padded to 257 bytes" {
	sem_init "$D/live" 1
	{
		tr -d '\n' <"$D/live"
		printf '%*s\n' $((257 - $(stat -c %s "$D/live"))) ''
	} >"$D/s"
	assert_equal "$(stat -c %s "$D/s")" 257
	refused_by_all "$D/s" 3 6 3
}

@test "record: a sparse file of 1 GiB" {
	truncate -s 1G "$D/s"
	refused_by_all "$D/s" 3 6 3
}

@test "record: a live record owned by another uid: destroy 4" {
	sem_init "$D/s" 2
	chown 65534 "$D/s"
	refused_by_all "$D/s" 3 6 4
	chown 0 "$D/s" # for teardown's destroy
}

@test "record: a record of ours naming another user's set" {
	reachable_by_nobody
	mkdir -m 1777 "$D/pub"
	as_nobody "$HELPER" init "$D/pub/theirs" 4 0666
	stale_case "$(cat "$D/pub/theirs")"
	run as_nobody "$HELPER" peek "$D/pub/theirs"
	assert_output 4
}

@test "record: a record naming a set that was removed" {
	sem_init "$D/gone" 1
	ipcrm -s "$(set_id "$D/gone")"
	stale_case "$(cat "$D/gone")"
	rm "$D/gone"
}

@test "record: a record naming a reused id: another set's id, with a different key" {
	local key
	ipcmk_set 1
	key=$(key_of "$SET")
	stale_case "$(record $((key == 0x5f3a9c21 ? 0x5f3a9c22 : 0x5f3a9c21)) "$SET")"
}

@test "record: a record naming a set of two semaphores, with its key" {
	ipcmk_set 2
	stale_case "$(record "$(key_of "$SET")" "$SET")"
}
