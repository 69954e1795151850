#!/usr/bin/env bats
# shellcheck disable=SC2016 # the single-quoted scripts run in child shells
# Names in a sticky, world-writable directory shared by users, between unprivileged users
# (security.bats has the cases with root as one side): what one user plants at a name
# another will use, permissions of modes 0600 and 0660, destroy and reclaim by the wrong
# user, and two users racing init.

load test_helper

# Unprivileged users, as uid:gid. Alice and Bob share a group; Mallory is in neither.
ALICE=4242:4300
BOB=4243:4300
MALLORY=65534:65534

eval "helper_$(declare -f setup)"
setup() {
	# The test_helper's setup, then a sticky world-writable directory like /tmp.
	helper_setup
	require_setpriv
	as "$ALICE" test -x "$D" || skip "uid 4242 cannot reach $D"
	P=$D/pub
	mkdir -m 1777 "$P"
}

# as UID:GID CMD...: run CMD as that unprivileged user, with no supplementary groups.
as() {
	local who=$1
	shift
	setpriv --reuid="${who%:*}" --regid="${who#*:}" --clear-groups -- "$@"
}

# helper_as UID:GID VERB ARG...: run the helper as that user (bats run, 10 s limit).
helper_as() {
	local who=$1
	shift
	run --separate-stderr timeout 10 setpriv --reuid="${who%:*}" --regid="${who#*:}" \
		--clear-groups -- "$HELPER" "$@"
	((status != 124)) || fail "hung"
}

# lib_as UID:GID FUNC ARG...: run a sem.sh function as that user (bats run, 10 s limit).
lib_as() {
	local who=$1
	shift
	run --separate-stderr timeout 10 setpriv --reuid="${who%:*}" --regid="${who#*:}" \
		--clear-groups -- bash -c 'source "$0"; "$@"' "$REPO_ROOT/sh/sem.sh" "$@"
	((status != 124)) || fail "hung"
}

# assert_helper_refused CODE: the last helper run exited CODE with one line on stderr.
assert_helper_refused() {
	assert_failure "$1"
	assert_one_line_stderr
	[[ $stderr == semctl-helper:* ]] || fail "unexpected message: $stderr"
}

# refused_as UID:GID CODE VERB ARG...: as that user, the helper exits CODE with one line,
# and sem_VERB returns 1 (silently, but for init and destroy's one line).
refused_as() {
	local who=$1 code=$2 verb=$3
	shift 3
	helper_as "$who" "$verb" "$@"
	assert_helper_refused "$code"
	lib_as "$who" "sem_$verb" "$@"
	assert_failure 1
	if [[ $verb == init || $verb == destroy ]]; then
		assert_one_line_stderr
	else
		assert_silent
	fi
}

# fingerprint PATH...: type, owner, mode, size, inode, times and contents, links unfollowed.
fingerprint() {
	local f
	for f in "$@"; do
		stat -c '%n %F %u %a %s %i %Y %Z' -- "$f"
		if [[ -f $f && ! -L $f ]]; then cksum <"$f"; fi
	done
}

# set_owner NAME: the uid that owns NAME's set, from the kernel.
set_owner() {
	ipcs -s -i "$(set_id "$1")" | sed -n 's/^uid=\([0-9]*\).*/\1/p'
}

# value_of NAME: the value of NAME's set, read by root straight from the kernel.
value_of() {
	ipcs -s -i "$(set_id "$1")" | awk '$1 == "0" && NF >= 5 { print $2 }'
}

@test "planted symlinks: the victim's init creates and changes nothing through them" {
	mkdir "$D/alice"
	chown "$ALICE" "$D/alice"
	as "$ALICE" sh -c 'echo precious >"$1/notes"' _ "$D/alice"
	as "$MALLORY" ln -s "$D/alice/notes" "$P/slots"
	as "$MALLORY" ln -s "$D/alice/created" "$P/dangling"
	as "$MALLORY" ln -s "$D/alice" "$P/dir"
	local before paths=("$D/alice" "$D/alice/notes" "$P/slots" "$P/dangling" "$P/dir")
	before=$(fingerprint "${paths[@]}")
	local name
	for name in "$P/slots" "$P/dangling" "$P/dir"; do
		refused_as "$ALICE" 6 init "$name" 3
		refused_as "$ALICE" 3 destroy "$name"
		refused_as "$ALICE" 3 post "$name"
		refused_as "$ALICE" 3 peek "$name"
	done
	assert_equal "$(fingerprint "${paths[@]}")" "$before"
	[[ ! -e $D/alice/created ]]
	assert_equal "$(ls -A "$D/alice")" notes
}

@test "a planted symlink to the victim's own semaphore: refused, the semaphore untouched" {
	mkdir "$D/alice"
	chown "$ALICE" "$D/alice"
	as "$ALICE" "$HELPER" init "$D/alice/sem" 2
	as "$MALLORY" ln -s "$D/alice/sem" "$P/sem"
	local verb
	for verb in post wait trywait peek; do
		refused_as "$ALICE" 3 "$verb" "$P/sem"
	done
	refused_as "$ALICE" 3 destroy "$P/sem"
	refused_as "$ALICE" 6 init "$P/sem" 1
	[[ -L $P/sem ]]
	assert_equal "$(value_of "$D/alice/sem")" 2
	helper_as "$ALICE" peek "$D/alice/sem"
	assert_output 2
}

@test "a record forged from ipcs, naming the victim's 0600 set: refused, and harmless" {
	as "$ALICE" "$HELPER" init "$P/alice" 5
	local id key ns
	id=$(set_id "$P/alice")
	key=$(ipcs -s | awk -v id="$id" '$2 == id { print $1 }')
	ns=$(readlink /proc/self/ns/ipc)
	# Mallory can't read Alice's 0600 record, but ipcs shows everyone's keys and ids.
	as "$MALLORY" cat "$P/alice" >/dev/null 2>&1 && fail "Mallory can read Alice's 0600 record"
	as "$MALLORY" sh -c 'printf "%s\n" "$2" >"$1"' _ "$P/forged" \
		"$(printf 'sem/1 key=0x%08x id=%s boot=%s ipcns=%s' "$key" "$id" \
			"$(cat /proc/sys/kernel/random/boot_id)" "${ns//[!0-9]/}")"
	local verb
	for verb in post wait trywait peek; do
		refused_as "$ALICE" 3 "$verb" "$P/forged"
	done
	# Alice's destroy doesn't act on a file she doesn't own; init doesn't take it over.
	refused_as "$ALICE" 4 destroy "$P/forged"
	refused_as "$ALICE" 6 init "$P/forged" 1
	# Mallory can't use it either: the set's mode keeps her out. Her destroy removes her own
	# file (it is only an untrusted record) and leaves Alice's set alone: the kernel
	# refuses her IPC_RMID.
	refused_as "$MALLORY" 4 post "$P/forged"
	run as "$MALLORY" "$HELPER" destroy "$P/forged"
	assert_success
	[[ ! -e $P/forged ]]
	assert_equal "$(value_of "$P/alice")" 5
}

@test "another user's live semaphore at the name: the victim's init and destroy refuse it" {
	as "$MALLORY" "$HELPER" init "$P/build-slots" 0 0666
	local before
	before=$(fingerprint "$P/build-slots")
	refused_as "$ALICE" 6 init "$P/build-slots" 3
	refused_as "$ALICE" 4 destroy "$P/build-slots"
	assert_equal "$(fingerprint "$P/build-slots")" "$before"
	assert_equal "$(value_of "$P/build-slots")" 0
}

@test "a record naming the planter's own set is the planter's semaphore: usable by its mode, owner shown" {
	# README, Shared directories: such a record is simply the planter's semaphore.
	as "$MALLORY" "$HELPER" init "$P/build-slots" 1 0666
	run as "$ALICE" "$HELPER" post "$P/build-slots"
	assert_success
	assert_equal "$(value_of "$P/build-slots")" 2
	run as "$ALICE" "$HELPER" status --json "$P/build-slots"
	assert_success
	assert_output --partial "\"owner\":${MALLORY%%:*},"
	refused_as "$ALICE" 6 init "$P/build-slots" 3
	refused_as "$ALICE" 4 destroy "$P/build-slots"
}

@test "a planted FIFO, directory or file: init refuses at once, destroy leaves it" {
	as "$MALLORY" mkfifo "$P/fifo"
	as "$MALLORY" mkdir "$P/dir"
	as "$MALLORY" sh -c 'echo junk >"$1"' _ "$P/file"
	local name before
	for name in "$P/fifo" "$P/dir" "$P/file"; do
		before=$(fingerprint "$name")
		refused_as "$ALICE" 6 init "$name" 1
		refused_as "$ALICE" 3 wait "$name"
	done
	# None is a record: destroy leaves each in place.
	refused_as "$ALICE" 3 destroy "$P/fifo"
	refused_as "$ALICE" 3 destroy "$P/dir"
	refused_as "$ALICE" 3 destroy "$P/file"
	[[ -p $P/fifo && -d $P/dir && -f $P/file ]]
}

@test "mode 0600 between two unprivileged users: the other gets 4 from every operation" {
	as "$ALICE" "$HELPER" init "$P/s" 1
	local before verb
	before=$(fingerprint "$P/s")
	for verb in post wait trywait peek; do
		refused_as "$BOB" 4 "$verb" "$P/s"
	done
	refused_as "$BOB" 4 init "$P/s" 1
	refused_as "$BOB" 4 destroy "$P/s"
	assert_equal "$(fingerprint "$P/s")" "$before"
	assert_equal "$(value_of "$P/s")" 1
}

@test "mode 0660: the group posts, peeks and waits; others get 4; the group can't destroy" {
	as "$ALICE" "$HELPER" init "$P/s" 0 0660
	assert_equal "$(stat -c '%a %g' "$P/s")" "640 ${ALICE#*:}"
	# Bob, in Alice's group, blocks until Alice posts.
	setpriv --reuid=4243 --regid=4300 --clear-groups -- "$HELPER" wait "$P/s" 10 3>&- &
	local bob=$!
	wait_for_waiters "$P/s" 1
	as "$ALICE" "$HELPER" post "$P/s"
	reap "$bob"
	assert_equal "$status" 0
	helper_as "$BOB" post "$P/s"
	assert_success
	helper_as "$BOB" peek "$P/s"
	assert_output 1
	helper_as "$BOB" trywait "$P/s"
	assert_success
	refused_as "$BOB" 4 destroy "$P/s"
	refused_as "$BOB" 6 init "$P/s" 1
	local verb
	for verb in post wait trywait peek; do
		refused_as "$MALLORY" 4 "$verb" "$P/s"
	done
	assert_equal "$(value_of "$P/s")" 0
}

@test "another user's destroy is refused with 4; the owner's waiter keeps waiting" {
	as "$ALICE" "$HELPER" init "$P/s" 0 0666
	setpriv --reuid=4242 --regid=4300 --clear-groups -- "$HELPER" wait "$P/s" 30 3>&- &
	local waiter=$!
	wait_for_waiters "$P/s" 1
	refused_as "$BOB" 4 destroy "$P/s"
	[[ $stderr == *"not the owner"* ]] || fail "the message does not say why: $stderr"
	refused_as "$MALLORY" 4 destroy "$P/s"
	assert_equal "$(waiters "$P/s")" 1
	[[ -f $P/s ]]
	as "$BOB" "$HELPER" post "$P/s"
	reap "$waiter"
	assert_equal "$status" 0
}

@test "a stale record: only its owner may reclaim or remove it, not another user nor root" {
	as "$ALICE" "$HELPER" init "$P/s" 1 0666
	ipcrm -s "$(set_id "$P/s")"
	local before
	before=$(fingerprint "$P/s")
	refused_as "$BOB" 6 init "$P/s" 2
	[[ $stderr == *"only its owner can reclaim"* ]] || fail "the message does not say why: $stderr"
	refused_as "$BOB" 4 destroy "$P/s"
	# Root is not the owner either: the owner is a uid, not a privilege.
	run --separate-stderr "$HELPER" init "$P/s" 2
	assert_helper_refused 6
	assert_equal "$(fingerprint "$P/s")" "$before"
	helper_as "$ALICE" init "$P/s" 3
	assert_success
	helper_as "$ALICE" peek "$P/s"
	assert_output 3
}

@test "two users racing init on one name: exactly one wins, and no set leaks" {
	local round a b
	for round in 1 2 3 4 5; do
		as "$ALICE" "$HELPER" init "$P/r$round" 1 2>/dev/null 3>&- &
		a=$!
		as "$BOB" "$HELPER" init "$P/r$round" 1 2>/dev/null 3>&- &
		b=$!
		reap "$a"
		local sa=$status
		reap "$b"
		local sb=$status
		if ! { [[ $sa == 0 && $sb != 0 ]] || [[ $sa != 0 && $sb == 0 ]]; }; then
			fail "round $round: alice exited $sa, bob $sb"
		fi
		local winner=4242
		[[ $sa == 0 ]] || winner=4243
		assert_equal "$(stat -c %u "$P/r$round")" "$winner"
		assert_equal "$(set_owner "$P/r$round")" "$winner"
	done
	# One set per name: the losers removed theirs (teardown checks for leaks).
	local sets
	sets=$(comm -13 <(echo "$SETS_BEFORE") <(kernel_sets) | wc -l)
	assert_equal "$sets" 5
}
