#!/usr/bin/env bats
# shellcheck disable=SC2016 # python and bash scripts in single quotes expand in the child
# shellcheck disable=SC2154 # bats run sets stderr and stderr_lines
# shellcheck disable=SC2030,SC2031 # each @test is a subshell; status and output are its own
# sem_status NAME: describe NAME for people (live or stale, value, waiters, last op, owner,
# mode, kernel ids). Returns 0 for a live semaphore, 1 otherwise (a stale record is still
# described); one stderr line when there is nothing to describe. Programs use
# `semctl-helper status --json NAME`: exit 0 live, 3 stale (still JSON) or missing.

load test_helper

# json_is JSON PYEXPR: the Python expression PYEXPR, over d (the parsed JSON), is true.
json_is() {
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
		fail "not ($2) in: $1"
}

# json_get JSON FIELD: FIELD's value; null, true and false as in JSON.
json_get() {
	python3 -c 'import json, sys; v = json.loads(sys.argv[1])[sys.argv[2]]; print(v if isinstance(v, (str, int)) and not isinstance(v, bool) else json.dumps(v))' "$1" "$2"
}

# record_key NAME: the key recorded in NAME's file, as 0x and 8 hex digits.
record_key() {
	sed -n 's/^sem\/1 key=\(0x[0-9a-f]*\) .*/\1/p' "$1"
}

@test "sem_status describes a live semaphore on stdout and returns 0" {
	sem_init "$D/s" 3
	run --separate-stderr sem_status "$D/s"
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 "$D/s: live"
	assert_output --regexp $'\n  value: +3\n'
	assert_output --regexp $'\n  waiters: +0 blocked\n'
	assert_output --partial "none yet"
	assert_output --partial "mode 0600"
	assert_output --partial "id $(set_id "$D/s")"
	assert_output --partial "key $(record_key "$D/s")"
}

@test "sem_status shows the blocked waiters and the value 0 while they wait" {
	sem_init "$D/s" 0
	bg_wait "$D/w1" "$D/s" 30
	bg_wait "$D/w2" "$D/s" 30
	wait_for_waiters "$D/s" 2
	run --separate-stderr sem_status "$D/s"
	assert_success
	assert_equal "$stderr" ""
	assert_output --partial "live"
	assert_output --regexp $'\n  value: +0\n'
	assert_output --regexp $'\n  waiters: +2 blocked\n'
	sem_post "$D/s" 2
	await "$D/w1"
	await "$D/w2"
}

@test "status --json right after init: every field, last_pid and last_op null" {
	local t0
	t0=$(date +%s)
	sem_init "$D/s" 3
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	assert_equal "$stderr" ""
	[[ $output != *$'\n'* ]] || fail "more than one line: $output"
	local j=$output
	json_is "$j" "d['name'] == '$D/s'"
	json_is "$j" "d['value'] == 3 and d['waiters'] == 0 and d['zero_waiters'] == 0"
	json_is "$j" "d['last_pid'] is None and d['last_op'] is None"
	json_is "$j" "d['owner'] == $(id -u)"
	json_is "$j" "d['mode'] == '0600'"
	json_is "$j" "d['key'] == '$(record_key "$D/s")'"
	json_is "$j" "d['id'] == $(set_id "$D/s")"
	json_is "$j" "d['stale'] is False and d['access'] is True and d['reason'] is None"
	json_is "$j" "type(d['changed']) is int and $t0 - 1 <= d['changed'] <= $(date +%s) + 1"
}

@test "status --json after an operation: last_pid is the operating process, last_op its time" {
	sem_init "$D/s" 0
	local t0
	t0=$(date +%s)
	"$HELPER" post "$D/s" &
	local pid=$!
	wait "$pid"
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	json_is "$output" "d['last_pid'] == $pid"
	json_is "$output" "type(d['last_op']) is int and $t0 - 1 <= d['last_op'] <= $(date +%s) + 1"
	json_is "$output" "d['value'] == 1"
}

@test "status --json while 3 sem_wait block: waiters 3, value 0; then 0 after 3 posts" {
	sem_init "$D/s" 0
	local i
	for i in 1 2 3; do
		bg_wait "$D/w$i" "$D/s" 30
	done
	wait_for_waiters "$D/s" 3
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	assert_equal "$stderr" ""
	json_is "$output" "d['waiters'] == 3 and d['value'] == 0 and d['stale'] is False"
	sem_post "$D/s" 3
	for i in 1 2 3; do
		await "$D/w$i"
	done
	run "$HELPER" status --json "$D/s"
	json_is "$output" "d['waiters'] == 0 and d['value'] == 0"
}

@test "status --json gives the mode as a 4-digit octal string: 0660" {
	sem_init "$D/s" 1 0660
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	assert_equal "$(json_get "$output" mode)" 0660
	json_is "$output" "isinstance(d['mode'], str) and isinstance(d['key'], str)"
	json_is "$output" "d['key'].startswith('0x') and len(d['key']) == 10"
	run sem_status "$D/s"
	assert_output --partial "mode 0660"
}

@test "a stale record: status --json exits 3 with stale true; sem_status describes it, returns 1" {
	sem_init "$D/s" 1
	local id
	id=$(set_id "$D/s")
	ipcrm -s "$id"
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_failure 3
	assert_equal "$stderr" ""
	json_is "$output" "d['stale'] is True and d['value'] is None and d['waiters'] is None"
	json_is "$output" "d['id'] == $id and d['key'] == '$(record_key "$D/s")' and d['owner'] == $(id -u)"
	json_is "$output" "isinstance(d['reason'], str) and d['reason'] != ''"
	run --separate-stderr sem_status "$D/s"
	assert_failure 1
	assert_equal "$stderr" ""
	assert_line --index 0 "$D/s: stale"
	# Describing it changed nothing.
	assert [ -f "$D/s" ]
}

@test "a missing name: exit 3 (sem_status 1), one line on stderr, nothing on stdout" {
	run --separate-stderr "$HELPER" status --json "$D/missing"
	assert_failure 3
	assert_one_line_stderr
	[[ $stderr == *"$D/missing"* ]] || fail "the message does not name it: $stderr"
	run --separate-stderr "$HELPER" status "$D/missing"
	assert_failure 3
	assert_one_line_stderr
	run --separate-stderr sem_status "$D/missing"
	assert_failure 1
	assert_one_line_stderr
	assert [ ! -e "$D/missing" ]
}

@test "a file that is not a record: exit 3 (sem_status 1), one line, file untouched" {
	echo "not a semaphore" >"$D/file"
	run --separate-stderr "$HELPER" status --json "$D/file"
	assert_failure 3
	assert_one_line_stderr
	run --separate-stderr sem_status "$D/file"
	assert_failure 1
	assert_one_line_stderr
	assert_equal "$(cat "$D/file")" "not a semaphore"
}

@test "sem_status on a relative NAME looks under \$HOME" {
	sem_init "$HOME/rel" 2
	run --separate-stderr sem_status rel
	assert_success
	assert_line --index 0 "$HOME/rel: live"
	run --separate-stderr "$HELPER" status --json rel
	assert_success
	json_is "$output" "d['name'] == '$HOME/rel' and d['value'] == 2"
}

@test "sem_status with the wrong number of arguments returns 1 and one usage line" {
	sem_init "$D/s" 1
	run --separate-stderr sem_status
	assert_failure 1
	assert_one_line_stderr
	run --separate-stderr sem_status "$D/s" "$D/s"
	assert_failure 1
	assert_one_line_stderr
}

@test "status of a semaphore whose mode keeps the caller out: 4 (sem_status 1), one line" {
	reachable_by_nobody
	sem_init "$D/s" 1
	run --separate-stderr as_nobody "$HELPER" status --json "$D/s"
	assert_failure 4
	assert_one_line_stderr
	run --separate-stderr as_nobody_sem sem_status "$D/s"
	assert_failure 1
	assert_one_line_stderr
}

@test "status shows the set's group: text 'owner: U, group G, mode M'; JSON group, state, ipcns" {
	sem_init --group 4321 "$D/s" 1 0660
	run --separate-stderr sem_status "$D/s"
	assert_success
	assert_output --regexp $'\n  owner: +root \\(uid 0\\), group gid 4321, mode 0660\n'
	sem_init "$D/r" 1
	run --separate-stderr sem_status "$D/r"
	assert_output --regexp $'\n  owner: +root \\(uid 0\\), group root \\(gid 0\\), mode 0600\n'
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	json_is "$output" "d['group'] == 4321 and d['state'] == 'live'"
	json_is "$output" "d['ipcns'] == $(readlink /proc/self/ns/ipc | tr -dc 0-9)"
	# A stale record: state stale, its recorded namespace, no group.
	ipcrm -s "$(set_id "$D/s")"
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_failure 3
	json_is "$output" "d['state'] == 'stale' and d['group'] is None and d['stale'] is True"
	json_is "$output" "d['ipcns'] == $(sed -n 's/.* ipcns=\([0-9]*\).*/\1/p' "$D/s")"
}

@test "status of a semaphore whose mode keeps the caller out says whose it is; list says no-access" {
	reachable_by_nobody
	sem_init "$D/s" 1
	# A readable record whose set's mode (0600) keeps uid 65534 out.
	chmod 644 "$D/s"
	run --separate-stderr as_nobody "$HELPER" status "$D/s"
	assert_failure 4
	assert_one_line_stderr
	[[ $stderr == *"permission denied: the semaphore belongs to uid 0 (root), group 0 (root), mode 0600; you are uid 65534"* ]] ||
		fail "$stderr"
	run --separate-stderr as_nobody "$HELPER" list --json "$D"
	assert_success
	json_is "$output" "d[0]['state'] == 'no-access' and d[0]['access'] is False and 'belongs to uid 0' in d[0]['reason']"
}

@test "status shows the capacity (the initial value): a text line, and \"capacity\" in the JSON" {
	sem_init "$D/s" 3
	sem_post "$D/s" 2
	run --separate-stderr sem_status "$D/s"
	assert_success
	assert_equal "$stderr" ""
	assert_output --regexp $'\n  value: +5\n  capacity: +3 \\(its initial value\\)\n'
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	json_is "$output" "d['capacity'] == 3 and d['value'] == 5"
	# Every field is still there, the capacity added.
	json_is "$output" "set(d) == {'name', 'value', 'capacity', 'waiters', 'zero_waiters', 'last_pid', 'last_op', 'changed', 'owner', 'mode', 'key', 'id', 'stale', 'access', 'reason', 'state', 'ipcns', 'group', 'kind', 'sysv'}"
	sem_init "$D/z" 0
	run --separate-stderr "$HELPER" status --json "$D/z"
	json_is "$output" "d['capacity'] == 0"
}

@test "status of a record written without cap: capacity unknown (text), null (JSON); stale: null" {
	sem_init "$D/s" 3
	sed -i 's/ cap=[0-9]*$//' "$D/s"
	run --separate-stderr sem_status "$D/s"
	assert_success
	assert_output --regexp $'\n  capacity: +unknown'
	run --separate-stderr "$HELPER" status --json "$D/s"
	assert_success
	json_is "$output" "d['capacity'] is None and d['value'] == 3"
	sem_init "$D/t" 2
	ipcrm -s "$(set_id "$D/t")"
	run --separate-stderr "$HELPER" status --json "$D/t"
	assert_failure 3
	json_is "$output" "d['capacity'] is None and d['stale'] is True"
}

@test "a name that isn't UTF-8: \"name\" null and \"name_bytes\" its bytes, in status and list --json" {
	local n=$D/$'\xff\xfe'
	sem_init "$n" 2
	run --separate-stderr "$HELPER" status --json "$n"
	assert_success
	assert_equal "$stderr" ""
	[[ $output != *$'\n'* ]] || fail "more than one line: $output"
	# os.fsencode gives back the bytes of argv exactly (Python decodes it with
	# surrogateescape).
	python3 -c '
import json, os, sys
d = json.loads(sys.argv[1])
assert d["name"] is None, d
assert d["name_bytes"] == list(os.fsencode(sys.argv[2])), d
assert bytes(d["name_bytes"]).endswith(b"/\xff\xfe"), d
assert d["kind"] == "sysv" and d["value"] == 2 and d["state"] == "live", d
' "$output" "$n" || fail "status --json: $output"
	run --separate-stderr "$HELPER" list --json "$D"
	assert_success
	assert_equal "$stderr" ""
	python3 -c '
import json, os, sys
entries = json.loads(sys.argv[1])
assert len(entries) == 1, entries
d = entries[0]
assert d["name"] is None and d["name_bytes"] == list(os.fsencode(sys.argv[2])), d
assert d["value"] == 2, d
' "$output" "$n" || fail "list --json: $output"
}
