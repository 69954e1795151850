#!/usr/bin/env bats
# shellcheck disable=SC2016 # python scripts in single quotes
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# semctl-helper list [--json] [DIR]: the semaphore records directly in DIR (default
# $HOME), with value, waiters and live/stale; files that are not records are skipped.
# semctl-helper prune [DIR]: remove the stale records in DIR that the caller owns, one
# line per record removed; live records, other users' and non-records stay. Exit 0.

load test_helper

# json_is JSON PYEXPR: the Python expression PYEXPR, over d (the parsed JSON), is true.
json_is() {
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
		fail "not ($2) in: $1"
}

# row NAME: the `list` row for NAME, its columns squeezed to single spaces.
row() {
	grep -E "^$1 " <<<"$output" | tr -s ' '
}

# stale NAME: make NAME's record stale by removing its kernel set behind its back.
stale() {
	ipcrm -s "$(set_id "$1")"
}

# others_dir: a world-writable sticky directory $D/pub where uid 65534 can make records
# (skip the test when it can't).
others_dir() {
	reachable_by_nobody
	mkdir "$D/pub"
	chmod 1777 "$D/pub"
	as_nobody test -w "$D/pub" || skip "uid 65534 cannot write in $D/pub"
}

@test "list shows each record with value, waiters and live/stale, and skips non-records" {
	sem_init "$D/a" 2
	sem_init "$D/b" 0
	sem_init "$D/c" 1
	stale "$D/c"
	echo "not a semaphore" >"$D/junk"
	: >"$D/empty"
	mkdir "$D/sub"
	sem_init "$D/sub/deep" 1
	ln -s a "$D/link"
	bg_wait "$D/sub/w" "$D/b" 30
	wait_for_waiters "$D/b" 1
	run --separate-stderr "$HELPER" list "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^NAME +VALUE +WAITERS +STATE$'
	assert_equal "${#lines[@]}" 4
	assert_equal "$(row "$D/a")" "$D/a 2 0 live"
	assert_equal "$(row "$D/b")" "$D/b 0 1 live"
	assert_equal "$(row "$D/c")" "$D/c - - stale"
	# Sorted by name; not the junk, the empty file, the directory, the link, or below.
	assert_line --index 1 --partial "$D/a "
	assert_line --index 3 --partial "$D/c "
	refute_output --partial junk
	refute_output --partial empty
	refute_output --partial link
	refute_output --partial deep
	sem_post "$D/b"
	await "$D/sub/w"
}

@test "list --json parses: one object per record, with its state" {
	sem_init "$D/a" 2 0660
	sem_init "$D/c" 1
	stale "$D/c"
	echo "not a semaphore" >"$D/junk"
	run --separate-stderr "$HELPER" list --json "$D"
	assert_success
	assert_equal "$stderr" ""
	json_is "$output" "isinstance(d, list) and len(d) == 2"
	json_is "$output" "[e['name'] for e in d] == ['$D/a', '$D/c']"
	json_is "$output" "d[0]['value'] == 2 and d[0]['waiters'] == 0 and d[0]['stale'] is False and d[0]['mode'] == '0660'"
	json_is "$output" "d[0]['id'] == $(set_id "$D/a") and d[0]['owner'] == $(id -u)"
	json_is "$output" "d[1]['stale'] is True and d[1]['value'] is None and d[1]['id'] == $(set_id "$D/c")"
	json_is "$output" "[e['state'] for e in d] == ['live', 'stale'] and all(type(e['ipcns']) is int for e in d)"
}

@test "list of a directory with no records prints nothing (--json: [])" {
	echo "not a semaphore" >"$D/junk"
	run --separate-stderr "$HELPER" list "$D"
	assert_success
	assert_silent
	run --separate-stderr "$HELPER" list --json "$D"
	assert_success
	assert_output "[]"
	assert_equal "$stderr" ""
}

@test "list's default DIR is \$HOME" {
	sem_init "$HOME/h" 4
	sem_init "$D/elsewhere" 1
	run --separate-stderr "$HELPER" list
	assert_success
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 2
	assert_equal "$(row "$HOME/h")" "$HOME/h 4 0 live"
	refute_output --partial elsewhere
	local home_list=$output
	run "$HELPER" list "$HOME"
	assert_equal "$output" "$home_list"
	run --separate-stderr "$HELPER" list --json
	assert_success
	json_is "$output" "[e['name'] for e in d] == ['$HOME/h'] and d[0]['value'] == 4"
}

@test "list of a missing directory fails with one line" {
	run --separate-stderr "$HELPER" list "$D/nodir"
	assert_failure
	assert_one_line_stderr
	run --separate-stderr "$HELPER" list --json "$D/nodir"
	assert_failure
	assert_one_line_stderr
}

@test "prune removes only the caller's stale records, one line each, and exits 0" {
	sem_init "$D/live" 2
	sem_init "$D/old1" 1
	sem_init "$D/old2" 1
	stale "$D/old1"
	stale "$D/old2"
	echo "not a semaphore" >"$D/junk"
	mkdir "$D/sub"
	sem_init "$D/sub/deep" 1
	stale "$D/sub/deep"
	run --separate-stderr "$HELPER" prune "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp "^removed $D/old1: "
	assert_line --index 1 --regexp "^removed $D/old2: "
	assert [ ! -e "$D/old1" ]
	assert [ ! -e "$D/old2" ]
	# Left alone: the live record (still working), the junk, and what's below.
	assert_equal "$(cat "$D/junk")" "not a semaphore"
	assert [ -f "$D/sub/deep" ]
	sem_post "$D/live"
	run sem_peek "$D/live"
	assert_output 3
	# Nothing left to prune.
	run --separate-stderr "$HELPER" prune "$D"
	assert_success
	assert_silent
}

@test "prune leaves another user's stale record alone" {
	others_dir
	as_nobody "$HELPER" init "$D/pub/theirs" 1 || skip "uid 65534 cannot make a record in $D/pub"
	sem_init "$D/pub/mine" 1
	stale "$D/pub/theirs"
	stale "$D/pub/mine"
	run --separate-stderr "$HELPER" prune "$D/pub"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^removed $D/pub/mine: .+"
	assert [ ! -e "$D/pub/mine" ]
	assert [ -f "$D/pub/theirs" ]
	run "$HELPER" list "$D/pub"
	assert_equal "$(row "$D/pub/theirs")" "$D/pub/theirs - - stale"
	# Its owner may prune it.
	run --separate-stderr as_nobody "$HELPER" prune "$D/pub"
	assert_success
	assert_output --regexp "^removed $D/pub/theirs: "
	assert [ ! -e "$D/pub/theirs" ]
}

@test "prune's default DIR is \$HOME" {
	sem_init "$HOME/old" 1
	sem_init "$HOME/live" 1
	stale "$HOME/old"
	sem_init "$D/elsewhere" 1
	stale "$D/elsewhere"
	run --separate-stderr "$HELPER" prune
	assert_success
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^removed $HOME/old: .+"
	assert [ ! -e "$HOME/old" ]
	assert [ -f "$HOME/live" ]
	assert [ -f "$D/elsewhere" ]
}

@test "prune of a missing directory fails with one line" {
	run --separate-stderr "$HELPER" prune "$D/nodir"
	assert_failure
	assert_one_line_stderr
}

@test "list pads names by display width: wide (CJK, emoji) names keep the columns aligned" {
	sem_init "$D/a" 1
	sem_init "$D/日本" 2
	sem_init "$D/😀" 3
	sem_init "$D/t"$'\t'"x" 4
	run --separate-stderr "$HELPER" list "$D"
	assert_success
	assert_equal "$stderr" ""
	# Display widths past "$D/": a 1, 日本 4, 😀 2, t\tx (escaped) 4; the widest sets the column.
	local w=$((${#D} + 5)) d=${#D}
	assert_equal "${#lines[@]}" 5
	assert_line --index 0 "$(printf '%s%*s  VALUE  WAITERS  STATE' NAME $((w - 4)) '')"
	assert_line --index 1 "$(printf '%s%*s  %5s  %7s  %s' "$D/a" $((w - d - 2)) '' 1 0 live)"
	assert_line --index 2 "$(printf '%s  %5s  %7s  %s' "$D/t\\tx" 4 0 live)"
	assert_line --index 3 "$(printf '%s  %5s  %7s  %s' "$D/日本" 2 0 live)"
	assert_line --index 4 "$(printf '%s%*s  %5s  %7s  %s' "$D/😀" $((w - d - 3)) '' 3 0 live)"
}
