#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# What a name file is trusted for (invariants 3 and 4) and the cross-user checks: stale
# and reused sets, records from elsewhere, links, special files, garbage, and other uids.

load test_helper

LIB=$REPO_ROOT/sh/sem.sh
export LIB

# lib FUNC ARG...: run a library function in a fresh bash, under a 5 s timeout so that a
# hang fails instead of blocking the suite; with SEM_VERBOSE=1 so that the quiet functions
# show their reason (checked for panics).
lib() {
	run --separate-stderr timeout 5 env SEM_VERBOSE=1 bash -c 'source "$0"; "$@"' "$LIB" "$@"
}

# nobody_lib FUNC ARG...: the same, as uid 65534 (add setpriv options with NOBODY_GROUP).
nobody_lib() {
	run --separate-stderr timeout 5 setpriv --reuid=65534 --regid="${NOBODY_GROUP:-65534}" \
		--clear-groups -- env SEM_VERBOSE=1 bash -c 'source "$0"; "$@"' "$LIB" "$@"
}

# refute_panic: the last run neither panicked nor hung.
refute_panic() {
	[[ $stderr != *panicked* && $output != *panicked* ]] || fail "panicked: $stderr"
	((status != 124)) || fail "hung (killed by timeout)"
}

# assert_refused: the last run returned 1, printed nothing on stdout, one line on stderr.
assert_refused() {
	refute_panic
	assert_failure 1
	assert_output ''
	[[ -n $stderr && $stderr != *$'\n'* ]] || fail "not one line on stderr: '$stderr'"
}

# all_refuse NAME: every function but init and destroy returns 1 on NAME.
all_refuse() {
	local f
	for f in sem_post sem_wait sem_trywait sem_peek; do
		lib "$f" "$1"
		assert_refused
	done
	lib sem_wait "$1" 0.5
	assert_refused
}

# fingerprint FILE: type, size, owner, mode, inode and contents' checksum, without following
# a link.
fingerprint() {
	local f=$1
	stat -c '%F %s %u %a %i %Y' -- "$f"
	if [[ -f $f && ! -L $f && $(stat -c %s -- "$f") -lt 1000000 ]]; then
		cksum <"$f"
	fi
}

# value_of_id ID: the value of semaphore 0 of kernel set ID.
value_of_id() {
	ipcs -s -i "$1" | awk '$1 == "0" && NF >= 5 { print $2 }'
}

# rewrite NAME SED-EXPR: edit a record in place, keeping its owner and mode.
rewrite() {
	local tmp
	tmp=$(sed "$2" "$1")
	printf '%s\n' "$tmp" >"$1"
}

# --- stale names ---

@test "stale after ipcrm: post, wait, trywait and peek return 1 and change nothing" {
	sem_init "$D/s" 3
	local before
	before=$(fingerprint "$D/s")
	ipcrm -s "$(set_id "$D/s")"
	all_refuse "$D/s"
	assert_equal "$(fingerprint "$D/s")" "$before"
	# Silent without SEM_VERBOSE.
	run --separate-stderr sem_peek "$D/s"
	assert_failure 1
	assert_output ''
	assert_equal "$stderr" ''
}

@test "stale after ipcrm: sem_init reclaims the name with the new value" {
	sem_init "$D/s" 3
	local old
	old=$(set_id "$D/s")
	ipcrm -s "$old"
	run --separate-stderr sem_init "$D/s" 7
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	run sem_peek "$D/s"
	assert_output 7
	sem_post "$D/s"
	sem_wait "$D/s"
	run sem_peek "$D/s"
	assert_output 7
}

@test "stale after ipcrm: sem_destroy removes the file and returns 0" {
	sem_init "$D/s" 3
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	[[ ! -e $D/s ]]
	run sem_destroy "$D/s"
	assert_failure 1
}

@test "reused id: a stale name whose id now belongs to another set never touches it" {
	[[ -w /proc/sys/kernel/sem_next_id ]] || skip "cannot choose the next set id"
	sem_init "$D/s" 3
	local id
	id=$(set_id "$D/s")
	ipcrm -s "$id"
	echo "$id" >/proc/sys/kernel/sem_next_id
	sem_init "$D/other" 5
	[[ $(set_id "$D/other") == "$id" ]] || skip "another process took id $id first"
	all_refuse "$D/s"
	run sem_peek "$D/other"
	assert_output 5
	assert_equal "$(value_of_id "$id")" 5
	# Destroying the stale name removes its file only.
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	[[ ! -e $D/s ]]
	run sem_peek "$D/other"
	assert_output 5
	# And init reclaims a reused-id name without touching the other set.
	sem_init "$D/s" 0
	ipcrm -s "$(set_id "$D/s")"
	sem_destroy "$D/other"
	local id2
	id2=$(set_id "$D/s")
	echo "$id2" >/proc/sys/kernel/sem_next_id
	sem_init "$D/other" 9
	[[ $(set_id "$D/other") == "$id2" ]] || skip "another process took id $id2 first"
	run sem_init "$D/s" 2
	assert_success
	run sem_peek "$D/s"
	assert_output 2
	run sem_peek "$D/other"
	assert_output 9
}

@test "reused id: a record naming another set's id with its own key is refused" {
	sem_init "$D/s" 3
	sem_init "$D/other" 5
	local id other
	id=$(set_id "$D/s")
	other=$(set_id "$D/other")
	ipcrm -s "$id"
	rewrite "$D/s" "s/ id=$id / id=$other /"
	grep -q " id=$other " "$D/s"
	all_refuse "$D/s"
	run sem_peek "$D/other"
	assert_output 5
	run sem_destroy "$D/s"
	assert_success
	[[ ! -e $D/s ]]
	run sem_peek "$D/other"
	assert_output 5
}

@test "a record from another boot is stale: 1, destroy leaves the set alone, init reclaims" {
	sem_init "$D/s" 3
	local id
	id=$(set_id "$D/s")
	rewrite "$D/s" 's/ boot=[0-9a-f-]* / boot=00000000-0000-4000-8000-000000000000 /'
	grep -q 'boot=00000000-0000-4000-8000-000000000000' "$D/s"
	all_refuse "$D/s"
	assert_equal "$(value_of_id "$id")" 3
	run sem_init "$D/s" 4
	assert_success
	run sem_peek "$D/s"
	assert_output 4
	[[ $(set_id "$D/s") != "$id" ]]
	# The record's set of "another boot" was never touched.
	assert_equal "$(value_of_id "$id")" 3
	ipcrm -s "$id"
}

@test "destroying a record from another boot removes the file, not this boot's set" {
	sem_init "$D/s" 3
	local id
	id=$(set_id "$D/s")
	rewrite "$D/s" 's/ boot=[0-9a-f-]* / boot=00000000-0000-4000-8000-000000000000 /'
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	[[ ! -e $D/s ]]
	assert_equal "$(value_of_id "$id")" 3
	ipcrm -s "$id"
}

@test "a record from another IPC namespace is refused: 1, and init --force reclaims" {
	sem_init "$D/s" 3
	local id ns
	id=$(set_id "$D/s")
	# ipcns is followed by the optional cap field, or ends the line.
	ns=$(sed -n 's/.* ipcns=\([0-9]*\)\( .*\)\{0,1\}$/\1/p' "$D/s")
	rewrite "$D/s" "s/ ipcns=$ns\b/ ipcns=$((ns + 100000))/"
	grep -q " ipcns=$((ns + 100000))\b" "$D/s"
	all_refuse "$D/s"
	assert_equal "$(value_of_id "$id")" 3
	# No process is seen in that namespace (it is made up), but not every process may be
	# seen: only --force replaces the record.
	run sem_init --force "$D/s" 4
	assert_success
	run sem_peek "$D/s"
	assert_output 4
	assert_equal "$(value_of_id "$id")" 3
	ipcrm -s "$id"
}

@test "a real other IPC namespace sees the name as stale" {
	[[ $(id -u) == 0 ]] && unshare -i true 2>/dev/null || skip "needs unshare -i"
	sem_init "$D/s" 3
	run --separate-stderr unshare -i "$HELPER" peek "$D/s"
	assert_failure 3
	assert_output ''
	run sem_peek "$D/s"
	assert_output 3
}

# --- links and special files ---

@test "a symlink to a valid record is refused by every function" {
	sem_init "$D/real" 2
	ln -s "$D/real" "$D/link"
	local before
	before=$(fingerprint "$D/real")
	all_refuse "$D/link"
	lib sem_destroy "$D/link"
	assert_refused
	[[ -L $D/link ]]
	lib sem_init "$D/link" 5
	assert_refused
	[[ -L $D/link && $(readlink "$D/link") == "$D/real" ]]
	assert_equal "$(fingerprint "$D/real")" "$before"
	run sem_peek "$D/real"
	assert_output 2
}

@test "init over a dangling symlink fails and creates nothing at its target" {
	ln -s "$D/target" "$D/link"
	lib sem_init "$D/link" 1
	assert_refused
	[[ -L $D/link && ! -e $D/target ]]
}

@test "a symlink to a directory is refused, and nothing is created inside it" {
	mkdir "$D/dir"
	ln -s "$D/dir" "$D/link"
	lib sem_init "$D/link" 1
	assert_refused
	assert_equal "$(ls -A "$D/dir")" ''
	all_refuse "$D/link"
}

@test "a FIFO at the name: every function returns 1 without hanging" {
	mkfifo "$D/s"
	all_refuse "$D/s"
	lib sem_init "$D/s" 1
	assert_refused
	lib sem_destroy "$D/s"
	assert_refused
	[[ -p $D/s ]]
}

@test "a directory at the name: every function returns 1" {
	mkdir "$D/s"
	all_refuse "$D/s"
	lib sem_init "$D/s" 1
	assert_refused
	lib sem_destroy "$D/s"
	assert_refused
	[[ -d $D/s ]]
}

@test "a device node at the name: every function returns 1" {
	mknod "$D/s" c 1 3 2>/dev/null || skip "cannot make device nodes here"
	all_refuse "$D/s"
	lib sem_init "$D/s" 1
	assert_refused
	lib sem_destroy "$D/s"
	assert_refused
	[[ -c $D/s ]]
}

@test "a socket at the name: every function returns 1" {
	command -v python3 >/dev/null || skip "no python3 to make a socket"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$D/s"
	all_refuse "$D/s"
	lib sem_init "$D/s" 1
	assert_refused
	[[ -S $D/s ]]
}

# --- bytes that are not a record ---

# check_not_a_record NAME: every function returns 1 on NAME, with no hang or panic, and
# the file is unchanged.
check_not_a_record() {
	local name=$1 before
	before=$(fingerprint "$name")
	all_refuse "$name"
	lib sem_init "$name" 1
	assert_refused
	lib sem_destroy "$name"
	assert_refused
	assert_equal "$(fingerprint "$name")" "$before"
	local verb
	for verb in post trywait peek; do
		run --separate-stderr timeout 5 "$HELPER" "$verb" "$name"
		refute_panic
		assert_failure 3
	done
}

@test "garbage bytes at the name: 1, no hang, no panic, file unchanged" {
	head -c 200 /dev/urandom >"$D/random"
	check_not_a_record "$D/random"
	printf 'hello\n' >"$D/text"
	check_not_a_record "$D/text"
	printf '\0\0\0\0\n' >"$D/nul"
	check_not_a_record "$D/nul"
	printf '\xff\xfe\xfd\n' >"$D/utf8"
	check_not_a_record "$D/utf8"
}

@test "an empty file at the name: 1, file unchanged" {
	: >"$D/s"
	check_not_a_record "$D/s"
}

@test "a truncated or altered record: 1, file unchanged" {
	sem_init "$D/live" 1
	local rec
	rec=$(cat "$D/live")
	printf '%s' "$rec" >"$D/nonewline"
	check_not_a_record "$D/nonewline"
	printf '%s\n' "${rec:0:30}" >"$D/truncated"
	check_not_a_record "$D/truncated"
	printf '%s\n%s\n' "$rec" "$rec" >"$D/twice"
	check_not_a_record "$D/twice"
	printf '%s\r\n' "$rec" >"$D/crlf"
	check_not_a_record "$D/crlf"
	printf '%s extra\n' "$rec" >"$D/extra"
	check_not_a_record "$D/extra"
	printf '%s\n' "${rec/ id=/ id=0}" >"$D/leading-zero"
	check_not_a_record "$D/leading-zero"
	printf '%s\n' "${rec//key=0x/key=0X}" >"$D/upper"
	check_not_a_record "$D/upper"
	printf '%s\n' "${rec// /  }" >"$D/spaces"
	check_not_a_record "$D/spaces"
	run sem_peek "$D/live"
	assert_output 1
}

@test "a valid record of format version sem/2: 1, file unchanged" {
	sem_init "$D/live" 1
	sed 's|^sem/1 |sem/2 |' "$D/live" >"$D/v2"
	check_not_a_record "$D/v2"
	run --separate-stderr "$HELPER" peek "$D/v2"
	[[ $stderr == *version* ]] || fail "the message does not mention the version: $stderr"
}

@test "a huge sparse file at the name: 1 at once, file unchanged" {
	truncate -s 1G "$D/s"
	local start end
	start=$(now)
	check_not_a_record "$D/s"
	end=$(now)
	assert_elapsed "$start" "$end" 0 10
	assert_equal "$(stat -c %s "$D/s")" 1073741824
}

@test "a record slightly over the size limit: 1, no panic" {
	sem_init "$D/live" 1
	{ cat "$D/live"; head -c 300 /dev/zero | tr '\0' x; } >"$D/s"
	check_not_a_record "$D/s"
}

# --- owners ---

@test "a record owned by another uid than its set's owner is refused" {
	sem_init "$D/s" 2
	local id
	id=$(set_id "$D/s")
	chown 65534 "$D/s"
	all_refuse "$D/s"
	assert_equal "$(value_of_id "$id")" 2
	# Not ours to destroy or reclaim either.
	lib sem_destroy "$D/s"
	assert_refused
	lib sem_init "$D/s" 5
	assert_refused
	[[ -f $D/s ]]
	assert_equal "$(value_of_id "$id")" 2
	# Back with its owner, it works again.
	chown 0 "$D/s"
	run sem_peek "$D/s"
	assert_output 2
}

@test "a record whose set belongs to another uid (ipc owner changed) is refused" {
	sem_init "$D/s" 2
	local id
	id=$(set_id "$D/s")
	command -v python3 >/dev/null || skip "no python3 for IPC_SET"
	# IPC_SET the set's owner to 65534 (root may), leaving the file root's.
	python3 - "$id" <<-'EOF' || skip "cannot IPC_SET here"
		import ctypes, sys
		libc = ctypes.CDLL(None, use_errno=True)
		class ipc_perm(ctypes.Structure):
		    _fields_ = [("key", ctypes.c_int), ("uid", ctypes.c_uint), ("gid", ctypes.c_uint),
		                ("cuid", ctypes.c_uint), ("cgid", ctypes.c_uint), ("mode", ctypes.c_ushort),
		                ("pad1", ctypes.c_ushort), ("seq", ctypes.c_ushort), ("pad2", ctypes.c_ushort),
		                ("unused1", ctypes.c_ulong), ("unused2", ctypes.c_ulong)]
		class semid_ds(ctypes.Structure):
		    _fields_ = [("perm", ipc_perm), ("otime", ctypes.c_long), ("unused1", ctypes.c_ulong),
		                ("ctime", ctypes.c_long), ("unused2", ctypes.c_ulong),
		                ("nsems", ctypes.c_ulong), ("unused3", ctypes.c_ulong), ("unused4", ctypes.c_ulong)]
		ds = semid_ds()
		sid = int(sys.argv[1])
		if libc.semctl(sid, 0, 2, ctypes.byref(ds)) != 0: sys.exit(1)   # IPC_STAT
		ds.perm.uid = 65534
		if libc.semctl(sid, 0, 1, ctypes.byref(ds)) != 0: sys.exit(1)   # IPC_SET
	EOF
	[[ $(ipcs -s -i "$id" | sed -n 's/^uid=\([0-9]*\).*/\1/p' | head -1) == 65534 ]] ||
		skip "the set's owner did not change"
	all_refuse "$D/s"
	assert_equal "$(value_of_id "$id")" 2
	ipcrm -s "$id"
	rm "$D/s"
}

# --- cross-user ---

@test "cross-user: nobody's symlink to root's semaphore is refused by root" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/mine" 2 0666
	as_nobody ln -s "$D/pub/mine" "$D/pub/trap"
	all_refuse "$D/pub/trap"
	lib sem_destroy "$D/pub/trap"
	assert_refused
	lib sem_init "$D/pub/trap" 1
	assert_refused
	[[ -L $D/pub/trap ]]
	run sem_peek "$D/pub/mine"
	assert_output 2
}

@test "cross-user: nobody's record naming root's set is refused, and can't destroy it" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/mine" 2 0666
	local id
	id=$(set_id "$D/pub/mine")
	as_nobody cp "$D/pub/mine" "$D/pub/forged"
	[[ $(stat -c %u "$D/pub/forged") == 65534 ]]
	# Root doesn't trust it...
	all_refuse "$D/pub/forged"
	lib sem_destroy "$D/pub/forged"
	assert_refused
	lib sem_init "$D/pub/forged" 1
	assert_refused
	# ...nor does nobody, whose destroy removes only the forged file.
	nobody_lib sem_post "$D/pub/forged"
	assert_refused
	nobody_lib sem_peek "$D/pub/forged"
	assert_refused
	nobody_lib sem_destroy "$D/pub/forged"
	assert_success
	assert_equal "$stderr" ''
	[[ ! -e $D/pub/forged ]]
	assert_equal "$(value_of_id "$id")" 2
	run sem_peek "$D/pub/mine"
	assert_output 2
}

@test "cross-user: mode 0600 keeps nobody out" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1
	local f
	for f in sem_peek sem_post sem_trywait sem_wait; do
		nobody_lib "$f" "$D/pub/s"
		assert_refused
	done
	run sem_peek "$D/pub/s"
	assert_output 1
}

@test "cross-user: mode 0666 admits nobody" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1 0666
	nobody_lib sem_peek "$D/pub/s"
	assert_success
	assert_output 1
	assert_equal "$stderr" ''
	nobody_lib sem_post "$D/pub/s"
	assert_success
	nobody_lib sem_wait "$D/pub/s" 1
	assert_success
	nobody_lib sem_trywait "$D/pub/s"
	assert_success
	run sem_peek "$D/pub/s"
	assert_output 0
}

@test "cross-user: mode 0660 admits the group and keeps others out" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1 0660
	NOBODY_GROUP=0 nobody_lib sem_peek "$D/pub/s"
	assert_success
	assert_output 1
	NOBODY_GROUP=0 nobody_lib sem_post "$D/pub/s"
	assert_success
	NOBODY_GROUP=0 nobody_lib sem_trywait "$D/pub/s"
	assert_success
	nobody_lib sem_peek "$D/pub/s"
	assert_refused
	nobody_lib sem_post "$D/pub/s"
	assert_refused
	run sem_peek "$D/pub/s"
	assert_output 1
}

@test "cross-user: the name file is writable by its owner only, whatever the mode" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	local m
	for m in 0600 0660 0666 0777; do
		sem_init "$D/pub/s$m" 1 "$m"
		local fm
		fm=$(stat -c %a "$D/pub/s$m")
		(((8#$fm & 8#022) == 0)) || fail "set mode $m: the file's mode is $fm"
		run as_nobody sh -c 'echo x >>"$1"' _ "$D/pub/s$m"
		assert_failure
	done
}

@test "cross-user: nobody's destroy of root's semaphore is refused with one line" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1 0666
	nobody_lib sem_destroy "$D/pub/s"
	assert_refused
	[[ -f $D/pub/s ]]
	# It still works, for both.
	sem_post "$D/pub/s"
	nobody_lib sem_wait "$D/pub/s" 1
	assert_success
	run sem_peek "$D/pub/s"
	assert_output 1
}

@test "cross-user: nobody's destroy doesn't wake root's waiters" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 0 0666
	bg sem_wait "$D/pub/s"
	local pid=$!
	wait_for_waiters "$D/pub/s" 1
	nobody_lib sem_destroy "$D/pub/s"
	assert_refused
	assert_equal "$(waiters "$D/pub/s")" 1
	sem_post "$D/pub/s"
	wait "$pid"
}

@test "cross-user: root's destroy of nobody's semaphore is refused (its owner is a uid)" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	nobody_lib sem_init "$D/pub/s" 1 0666
	assert_success
	lib sem_destroy "$D/pub/s"
	assert_refused
	nobody_lib sem_peek "$D/pub/s"
	assert_output 1
	nobody_lib sem_destroy "$D/pub/s"
	assert_success
	[[ ! -e $D/pub/s ]]
}

@test "cross-user: nobody can't reclaim root's stale name" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	sem_init "$D/pub/s" 1 0666
	ipcrm -s "$(set_id "$D/pub/s")"
	local before
	before=$(fingerprint "$D/pub/s")
	nobody_lib sem_init "$D/pub/s" 5
	assert_refused
	nobody_lib sem_destroy "$D/pub/s"
	assert_refused
	assert_equal "$(fingerprint "$D/pub/s")" "$before"
}
