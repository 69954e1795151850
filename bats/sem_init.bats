#!/usr/bin/env bats
# shellcheck disable=SC2016 # bash -c scripts in single quotes expand $1 and $REPO_ROOT in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_init NAME VALUE [MODE]: the contract's lines for creating a semaphore, its names,
# and the promise that a failure leaves neither a file nor a kernel set behind.

load test_helper

# assert_stderr_mentions TEXT: the last run's stderr contains TEXT.
assert_stderr_mentions() {
	[[ $stderr == *"$1"* ]] || fail "stderr does not mention '$1': $stderr"
}

# path_of NAME: set the caller's `path` to where NAME's file is (a relative NAME is under
# $HOME). Not a $(...): that would strip a NAME's trailing newlines.
path_of() {
	if [[ $1 == /* ]]; then
		path=$1
	else
		path=$HOME/$1
	fi
}

# assert_init_fails NAME VALUE [MODE]: sem_init returns 1 with one line on stderr and
# leaves no file at NAME (the teardown's leak check covers the kernel set).
assert_init_fails() {
	local path
	path_of "$1"
	run --separate-stderr sem_init "$@"
	assert_failure 1
	assert_one_line_stderr
	if [[ $path != */ ]] && [[ -e $path || -L $path ]]; then
		fail "sem_init left a file at '$path'"
	fi
}

# roundtrip NAME: create, use and destroy a semaphore called NAME.
roundtrip() {
	local name=$1 path
	path_of "$1"
	run --separate-stderr sem_init "$name" 2
	assert_success
	assert_silent
	assert [ -f "$path" ]
	run --separate-stderr sem_peek "$name"
	assert_success
	assert_output 2
	sem_post "$name"
	sem_trywait "$name"
	run --separate-stderr sem_peek "$name"
	assert_output 2
	run --separate-stderr sem_destroy "$name"
	assert_success
	assert_silent
	assert [ ! -e "$path" ]
}

@test "sem_init creates the semaphore with VALUE, silent on stdout and stderr" {
	run --separate-stderr sem_init "$D/s" 3
	assert_success
	assert_silent
	assert [ -f "$D/s" ]
	assert_set_exists "$(set_id "$D/s")"
	run --separate-stderr sem_peek "$D/s"
	assert_success
	assert_output 3
}

@test "sem_init accepts VALUE 0 and 32767, the bounds" {
	run --separate-stderr sem_init "$D/zero" 0
	assert_success
	assert_silent
	run --separate-stderr sem_init "$D/max" 32767
	assert_success
	assert_silent
	run sem_peek "$D/zero"
	assert_output 0
	run sem_peek "$D/max"
	assert_output 32767
}

@test "sem_init reads VALUE as decimal, leading zeros included" {
	run --separate-stderr sem_init "$D/s" 010
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 10
}

@test "sem_init VALUE 32768 fails with one line naming the limit 32767, leaving nothing" {
	assert_init_fails "$D/s" 32768
	assert_stderr_mentions 32767
}

@test "sem_init rejects VALUEs that are not decimal digits, with one line each, leaving nothing" {
	local v
	for v in '' -1 +1 1.5 0x10 ' 1' '1 ' 99999999999999999999 abc 1e3 $'1\n'; do
		assert_init_fails "$D/s" "$v"
	done
	assert_init_fails "$D/s" 99999999999999999999
	assert_stderr_mentions 32767
}

@test "a failed sem_init leaves no kernel set (checked in a private IPC namespace)" {
	if ! unshare --ipc true 2>/dev/null; then
		skip "unshare --ipc is not permitted here"
	fi
	# In a namespace of its own the only sets are the ones this test makes, so other
	# suites running at the same time can't blur the count.
	run --separate-stderr unshare --ipc bash -c '
		source "$REPO_ROOT/sh/sem.sh"
		d=$1
		sem_init "$d/v" 32768
		sem_init "$d/v" 1.5
		sem_init "$d/v" -1
		sem_init "$d/m" 1 999
		sem_init "$d/m" 1 0o600
		sem_init "$d/nodir/x" 1
		sem_init "$d/t/" 1
		sem_init "" 1
		sem_init "$d/e" 1 && sem_init "$d/e" 2
		ipcs -s | awk '\''$2 ~ /^[0-9]+$/'\'' | wc -l
		sem_destroy "$d/e"
		ipcs -s | awk '\''$2 ~ /^[0-9]+$/'\'' | wc -l
	' _ "$D"
	# One set: "e", made on purpose; the nine failures added none.
	assert_equal "${lines[0]}" 1
	assert_equal "${lines[1]}" 0
	assert_equal "${#stderr_lines[@]}" 9
	run ls -A "$D"
	assert_output ""
}

@test "sem_init on an existing name returns 1 with one line and leaves the original alone" {
	sem_init "$D/s" 5
	local id before
	id=$(set_id "$D/s")
	before=$(cat "$D/s")
	run --separate-stderr sem_init "$D/s" 2
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$D/s" 2 0660
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(cat "$D/s")" "$before"
	assert_equal "$(set_id "$D/s")" "$id"
	run --separate-stderr sem_peek "$D/s"
	assert_output 5
	assert_set_exists "$id"
	run ipcs -s -i "$id"
	assert_output --partial "access_perms=0600"
}

@test "sem_init over a file that is not a semaphore returns 1 and leaves the file alone" {
	echo "precious data" >"$D/file"
	run --separate-stderr sem_init "$D/file" 1
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(cat "$D/file")" "precious data"
	mkdir "$D/dir"
	run --separate-stderr sem_init "$D/dir" 1
	assert_failure 1
	assert_one_line_stderr
	assert [ -d "$D/dir" ]
}

@test "sem_init on a stale name (its kernel set removed) reclaims it" {
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr sem_init "$D/s" 7
	assert_success
	assert_silent
	run sem_peek "$D/s"
	assert_output 7
}

@test "sem_init MODE defaults to 0600: the set is 0600 and the file -rw-------" {
	sem_init "$D/s" 1
	run ipcs -s -i "$(set_id "$D/s")"
	assert_success
	assert_output --partial "mode=0600"
	run stat -c %A "$D/s"
	assert_output -- "-rw-------"
}

@test "sem_init MODE 0660 makes the set 0660; the file stays writable by its owner only" {
	run --separate-stderr sem_init "$D/s" 1 0660
	assert_success
	assert_silent
	run ipcs -s -i "$(set_id "$D/s")"
	assert_output --partial "mode=0660"
	run stat -c %a "$D/s"
	assert_output 640
}

@test "sem_init never makes the file writable by anyone but its owner, whatever MODE" {
	local m
	for m in 0666 0777 0622; do
		run --separate-stderr sem_init "$D/s$m" 1 "$m"
		assert_success
		assert_silent
		run stat -c %a "$D/s$m"
		# Neither group nor other may write: the digits for them are 0, 4 or 5.
		assert_output --regexp '^[0-7][0145][0145]$'
	done
}

@test "sem_init MODE 0660 lets the group use the semaphore; 0600 does not" {
	reachable_by_nobody
	sem_init "$D/g" 1 0660
	sem_init "$D/p" 1 0600
	# uid 65534 in group 0: the group of the sets and of their files.
	as_group() {
		setpriv --reuid=65534 --regid=0 --clear-groups -- \
			bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@"
	}
	run --separate-stderr as_group sem_post "$D/g"
	assert_success
	assert_silent
	run --separate-stderr as_group sem_peek "$D/g"
	assert_success
	assert_output 2
	run --separate-stderr as_group sem_post "$D/p"
	assert_failure 1
	assert_silent
	run sem_peek "$D/p"
	assert_output 1
}

@test "sem_init rejects a bad MODE with one line, leaving nothing" {
	local m
	for m in 999 0o600 -1 '' 8 abc 0x1ff 07777 ' 0600'; do
		assert_init_fails "$D/s" 1 "$m"
	done
}

@test "a relative NAME resolves under \$HOME" {
	run --separate-stderr sem_init rel 4
	assert_success
	assert_silent
	assert [ -f "$HOME/rel" ]
	run sem_peek "$HOME/rel"
	assert_output 4
	mkdir "$HOME/sub"
	run --separate-stderr sem_init sub/rel 2
	assert_success
	assert [ -f "$HOME/sub/rel" ]
	assert [ ! -e "$PWD/sub/rel" ]
}

@test "a relative NAME follows HOME when HOME is set to another directory" {
	mkdir "$D/otherhome"
	HOME=$D/otherhome run --separate-stderr sem_init rel 3
	assert_success
	assert_silent
	assert [ -f "$D/otherhome/rel" ]
	assert [ ! -e "$HOME/rel" ]
	run sem_peek "$D/otherhome/rel"
	assert_output 3
}

# in_passwd_home HOME_SETTING: run sem_init on a relative name with HOME unset (unset)
# or empty (empty), then check the name landed under the password database's home.
in_passwd_home() {
	local how=$1 pwhome dir rel created='' value='' destroyed=''
	pwhome=$(getent passwd "$(id -u)" | cut -d: -f6)
	if [[ -z $pwhome || ! -d $pwhome || ! -w $pwhome ]]; then
		skip "the password database's home ($pwhome) is not a writable directory"
	fi
	dir=$(mktemp -d "$pwhome/.sem-bats.XXXXXX")
	rel=${dir#"$pwhome"/}/s
	local -a env_args=(env -u HOME)
	if [[ $how == empty ]]; then
		env_args=(env HOME=)
	fi
	run --separate-stderr "${env_args[@]}" bash -c \
		'source "$REPO_ROOT/sh/sem.sh"; sem_init "$1" 6' _ "$rel"
	local init_status=$status init_output=$output init_stderr=$stderr
	[[ -f $dir/s ]] && created=yes
	value=$("$HELPER" peek "$dir/s" 2>/dev/null) || true
	"${env_args[@]}" bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_destroy "$1"' _ "$rel" &&
		destroyed=yes
	# Clean up outside the test's directory before asserting anything.
	"$HELPER" destroy "$dir/s" 2>/dev/null || true
	rm -rf "$dir"
	assert_equal "$init_status" 0
	assert_equal "$init_output" ""
	assert_equal "$init_stderr" ""
	assert_equal "$created" yes
	assert_equal "$value" 6
	assert_equal "$destroyed" yes
}

@test "with HOME unset a relative NAME resolves under the password database's home" {
	in_passwd_home unset
}

@test "with HOME empty a relative NAME resolves under the password database's home" {
	in_passwd_home empty
}

@test "an absolute NAME is used as is" {
	mkdir -p "$D/a/b"
	run --separate-stderr sem_init "$D/a/b/s" 1
	assert_success
	assert [ -f "$D/a/b/s" ]
	assert [ ! -e "$HOME/$D/a/b/s" ]
}

@test "a NAME with spaces works" {
	roundtrip "$D/a name with  spaces "
	roundtrip " leading space in HOME"
}

@test "a unicode NAME works" {
	roundtrip "$D/sémaphore ☃ 信号"
}

@test "a NAME holding a newline works" {
	roundtrip "$D/two"$'\n'"lines"
	roundtrip $'\n'
}

@test "a NAME holding bytes that are not UTF-8 works" {
	roundtrip "$D/"$'\xff\xfe'
	roundtrip "$D/latin1-"$'\xe9t\xe9'
}

@test "a NAME holding shell metacharacters, tabs or a leading dash works" {
	roundtrip "$D/*?[x]\$HOME;\`true\`'\"\\"
	roundtrip "$D/tab"$'\t'"x"
	roundtrip "-dash"
	roundtrip "--help"
}

@test "an empty NAME fails with one line" {
	run --separate-stderr sem_init "" 1
	assert_failure 1
	assert_one_line_stderr
}

@test "a NAME ending in / fails with one line, leaving nothing" {
	mkdir "$D/dir"
	assert_init_fails "$D/x/" 1
	assert [ ! -e "$D/x" ]
	assert_init_fails "$D/dir/" 1
	run ls -A "$D/dir"
	assert_output ""
	assert_init_fails "rel/" 1
	assert [ ! -e "$HOME/rel" ]
	assert_init_fails "/" 1
}

@test "a missing parent directory fails with a clear one-line message" {
	assert_init_fails "$D/missing/s" 1
	assert [ ! -e "$D/missing" ]
	assert_stderr_mentions "parent directory"
	assert_init_fails "missing/s" 1
	assert_stderr_mentions "parent directory"
}

@test "sem_init without permission to create the file fails with one line, leaving nothing" {
	reachable_by_nobody
	run --separate-stderr as_nobody_sem sem_init "$D/s" 1
	assert_failure 1
	assert_one_line_stderr
	assert [ ! -e "$D/s" ]
}

@test "sem_init hitting the kernel's SEMMNI limit fails with one line naming it" {
	if ! unshare --ipc true 2>/dev/null; then
		skip "unshare --ipc is not permitted here"
	fi
	# A private IPC namespace has its own limits: allow one set there, so the second
	# sem_init meets ENOSPC without touching the machine's limits.
	run --separate-stderr unshare --ipc bash -c '
		read -r msl mns opm mni </proc/sys/kernel/sem
		echo "$msl $mns $opm 1" >/proc/sys/kernel/sem || exit 99
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/a" 1 || exit 98
		rc=0
		sem_init "$1/b" 1 || rc=$?
		[[ -e $1/b ]] && echo "file b left behind"
		ipcs -s | awk '\''$2 ~ /^[0-9]+$/'\'' | wc -l
		sem_destroy "$1/a"
		exit "$rc"
	' _ "$D"
	if [[ $status == 99 ]]; then
		skip "cannot set kernel.sem in a private IPC namespace"
	fi
	assert_failure 1
	assert_output 1
	assert_stderr_one_line
	assert_stderr_mentions SEMMNI
}

@test "sem_init with the wrong number of arguments returns 1 with one line" {
	run --separate-stderr sem_init
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$D/s"
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_init "$D/s" 1 0600 extra
	assert_failure 1
	assert_one_line_stderr
	assert [ ! -e "$D/s" ]
}

@test "sem_init works in a caller running set -euo pipefail" {
	run --separate-stderr bash -c '
		set -euo pipefail
		source "$REPO_ROOT/sh/sem.sh"
		sem_init "$1/s" 2
		rc=0
		sem_init "$1/s" 2 2>/dev/null || rc=$?
		echo "again=$rc"
		sem_init "$1/t" 1 0660
		echo "value=$(sem_peek "$1/s")"
		[[ $- == *e* && $(set -o | grep pipefail) == *on ]] && echo "options kept"
		sem_destroy "$1/s"
		sem_destroy "$1/t"
		echo done
	' _ "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'again=1\nvalue=2\noptions kept\ndone'
}

@test "sem_init reclaiming a name whose lock a stranger holds fails after a bounded wait" {
	sem_init "$D/s" 1
	ipcrm -s "$(set_id "$D/s")"
	# Anyone who can read the record can flock it; init must not hang at their will.
	bg flock "$D/s" sleep 30
	local holder=$!
	sleep 0.2
	local start end
	start=$(now)
	run --separate-stderr sem_init "$D/s" 2
	end=$(now)
	# flock(1) runs sleep as its child, which inherits the locked descriptor.
	pkill -P "$holder" 2>/dev/null || true
	assert_failure 1
	assert_one_line_stderr
	[[ $stderr == *"lock"* ]] || fail "the message does not mention the lock: $stderr"
	assert_elapsed "$start" "$end" 4.5 10
	# Once the lock is free, the reclaim goes through.
	reap "$holder"
	run sem_init "$D/s" 2
	assert_success
	run sem_peek "$D/s"
	assert_output 2
}

# --- the set's group: sem_init --group GROUP ---

# other_group: a group of /etc/group other than root's, by name, in GROUP_NAME and GROUP_ID.
other_group() {
	local line
	line=$(awk -F: '$3 != 0 && $3 != 65534 { print $1 ":" $3; exit }' /etc/group)
	[[ -n $line ]] || skip "no group in /etc/group other than root's and nogroup"
	GROUP_NAME=${line%%:*}
	GROUP_ID=${line##*:}
}

# as_uid GROUPS CMD...: run CMD as uid 65534 with primary group 65534 and the
# supplementary GROUPS (comma-separated; empty: none).
as_uid() {
	local groups=$1
	shift
	if [[ -n $groups ]]; then
		setpriv --reuid=65534 --regid=65534 --groups="$groups" -- "$@"
	else
		setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
	fi
}

@test "sem_init --group G 0660: a second uid in G uses it, one outside G is refused and told why" {
	reachable_by_nobody
	other_group
	run --separate-stderr sem_init --group "$GROUP_NAME" "$D/s" 1 0660
	assert_success
	assert_silent
	# The record file has the group too, so its group-read bit means G.
	assert_equal "$(stat -c '%g %a' "$D/s")" "$GROUP_ID 640"
	run "$HELPER" status --json "$D/s"
	assert_success
	[[ $output == *"\"group\":$GROUP_ID"* ]] || fail "$output"
	# uid 65534 in G (a supplementary group).
	run --separate-stderr as_uid "$GROUP_ID" bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_post "$1" && sem_peek "$1"' _ "$D/s"
	assert_success
	assert_output 2
	# uid 65534 outside G: refused, and SEM_VERBOSE says whose it is and who you are.
	run --separate-stderr as_uid '' bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_post "$1"' _ "$D/s"
	assert_failure 1
	assert_silent
	run --separate-stderr as_uid '' "$HELPER" post "$D/s"
	assert_failure 4
	assert_one_line_stderr
	# Root's own primary group is no longer the set's group either.
	run --separate-stderr setpriv --reuid=65534 --regid=0 --clear-groups -- "$HELPER" post "$D/s"
	assert_failure 4
	run sem_peek "$D/s"
	assert_output 2
}

@test "sem_init -g takes a numeric gid; init --group after the arguments works too" {
	run --separate-stderr sem_init -g 4321 "$D/s" 1 0660
	assert_success
	assert_silent
	assert_equal "$(stat -c %g "$D/s")" 4321
	run --separate-stderr "$HELPER" init "$D/t" 1 0660 --group 4322
	assert_success
	run "$HELPER" status --json "$D/t"
	[[ $output == *'"group":4322'* ]] || fail "$output"
	run "$HELPER" status "$D/t"
	assert_output --regexp $'\n  owner: +root \\(uid 0\\), group gid 4322, mode 0660\n'
}

@test "sem_init with a bad group fails with one line, leaving nothing" {
	local g
	for g in no-such-group-here '' -1 4294967295 99999999999 ' 12' 1x; do
		assert_init_fails --group "$g" "$D/s" 1
		run --separate-stderr "$HELPER" init --group "$g" "$D/s" 1
		assert_failure 2
		assert_one_line_stderr
		[[ ! -e $D/s ]]
	done
}

@test "sem_init --group of a group the caller isn't in (not root): 4, one line, nothing left" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	run --separate-stderr as_uid '' "$HELPER" init --group 0 "$D/pub/s" 1 0660
	assert_failure 4
	assert_one_line_stderr
	[[ $stderr == *"you are not a member of group 0"* ]] || fail "$stderr"
	[[ ! -e $D/pub/s ]]
	run --separate-stderr as_uid '' bash -c 'source "$REPO_ROOT/sh/sem.sh"; sem_init --group 4321 "$1" 1 0660' _ "$D/pub/s"
	assert_failure 1
	assert_one_line_stderr
	[[ ! -e $D/pub/s ]]
	# A member may: a supplementary group, or its own.
	run --separate-stderr as_uid 4321 "$HELPER" init --group 4321 "$D/pub/s" 1 0660
	assert_success
	assert_equal "$(stat -c '%u %g' "$D/pub/s")" "65534 4321"
	run --separate-stderr as_uid '' "$HELPER" init --group 65534 "$D/pub/t" 1
	assert_success
}

@test "sem_init's options: --force and --group before NAME; a NAME that looks like one still works" {
	run --separate-stderr sem_init --force --group 0 -- "$D/s" 1
	assert_success
	assert_silent
	# --force never replaces a live semaphore of this namespace.
	run --separate-stderr sem_init --force "$D/s" 2
	assert_failure 1
	assert_one_line_stderr
	run sem_peek "$D/s"
	assert_output 1
	# With only NAME and VALUE left, a leading dash is a NAME, as it always was.
	run --separate-stderr sem_init --force 3
	assert_success
	assert [ -f "$HOME/--force" ]
	run --separate-stderr sem_init --group "$D/t"
	assert_failure 1
	assert_one_line_stderr
}

# --- permission messages say why ---

@test "permission messages name the owner, group and mode, and who you are" {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	local you='you are uid 65534 (nobody)'
	grep -q '^nobody:' /etc/passwd || you='you are uid 65534'
	# The set's mode.
	sem_init "$D/pub/s" 1 0600
	chmod 644 "$D/pub/s"
	run --separate-stderr as_nobody "$HELPER" peek "$D/pub/s"
	assert_failure 4
	assert_one_line_stderr
	assert_equal "$stderr" "semctl-helper: peek: $D/pub/s: permission denied: the semaphore belongs to uid 0 (root), group 0 (root), mode 0600; $you, group 65534"
	# The record file.
	chmod 600 "$D/pub/s"
	run --separate-stderr as_nobody "$HELPER" post "$D/pub/s"
	assert_failure 4
	assert_equal "$stderr" "semctl-helper: post: $D/pub/s: permission denied: the record file belongs to uid 0 (root), group 0 (root), mode 0600; $you, group 65534"
	# A directory init can't write in.
	run --separate-stderr as_nobody "$HELPER" init "$D/new" 1
	assert_failure 4
	assert_equal "$stderr" "semctl-helper: init: $D/new: permission denied: cannot create the record: its directory belongs to uid 0 (root), group 0 (root), mode 0755; $you, group 65534"
	# A directory destroy can't write in.
	as_nobody "$HELPER" init "$D/pub/n" 1
	chmod 755 "$D/pub"
	run --separate-stderr as_nobody "$HELPER" destroy "$D/pub/n"
	assert_failure 4
	assert_equal "$stderr" "semctl-helper: destroy: $D/pub/n: permission denied: cannot remove the record: its directory belongs to uid 0 (root), group 0 (root), mode 0755; $you, group 65534"
	chmod 1777 "$D/pub"
	[[ -f $D/pub/n ]]
}
