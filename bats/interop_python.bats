#!/usr/bin/env bats
# Python on the same semaphore: sysv_ipc opens the kernel set by the key that
# `semctl-helper status --json` reports, and each side sees the other's counts and wakes
# the other's waiters. The Python comes from the private virtualenv that `make bats` makes
# (.venv-test, with sysv_ipc), named by SEM_TEST_PYTHON.

load test_helper

eval "helper_$(declare -f setup)"
setup() {
	helper_setup
	PY=${SEM_TEST_PYTHON:-$REPO_ROOT/.venv-test/bin/python}
	if [[ ! -x $PY ]]; then
		skip "no Python at $PY: run make venv (python3 -m venv, then pip install sysv_ipc)"
	fi
	if ! "$PY" -c 'import sysv_ipc' 2>/dev/null; then
		skip "$PY has no sysv_ipc: run make venv (pip install sysv_ipc)"
	fi
	sem_init "$D/s" 0
	# py.py ACTION: open $D/s by its key, as the README's example does, and do ACTION.
	cat >"$D/py.py" <<'EOF'
import json, subprocess, sys, time, sysv_ipc

helper, name, action = sys.argv[1:4]
status = json.loads(subprocess.run([helper, "status", "--json", name],
                                   capture_output=True, text=True, check=True).stdout)
sem = sysv_ipc.Semaphore(int(status["key"], 16))
if action == "value":
    print(sem.value)
elif action == "post":
    sem.release()
elif action == "wait":
    sem.acquire()
    print("acquired", flush=True)
elif action == "hold":
    sem.undo = True
    sem.acquire()
    print("held", flush=True)
    time.sleep(3600)
EOF
}

# py ACTION: run py.py ACTION on $D/s.
py() {
	"$PY" "$D/py.py" "$HELPER" "$D/s" "$1"
}

# value_is N: sem_peek reads N.
value_is() {
	[[ $(sem_peek "$D/s") == "$1" ]]
}

@test "Python and sem.sh read the same values, both ways" {
	run --separate-stderr py value
	assert_success
	assert_output 0
	sem_post "$D/s" 3
	run --separate-stderr py value
	assert_output 3
	run --separate-stderr py post
	assert_success
	assert_silent
	run --separate-stderr sem_peek "$D/s"
	assert_output 4
	run --separate-stderr py wait
	assert_success
	assert_output acquired
	run --separate-stderr sem_peek "$D/s"
	assert_output 3
	sem_trywait "$D/s"
	run --separate-stderr py value
	assert_output 2
	assert_equal "$stderr" ""
}

@test "a Python post wakes a blocked sem_wait" {
	bg_wait "$D/w" "$D/s"
	wait_for_waiters "$D/s" 1
	run --separate-stderr py post
	assert_success
	await "$D/w" 5
	assert_equal "$(cut -d' ' -f1 "$D/w")" 0
	assert_waiter_silent "$D/w"
	run sem_peek "$D/s"
	assert_output 0
}

@test "a Python waiter blocked in acquire is woken by sem_post" {
	bg "$PY" "$D/py.py" "$HELPER" "$D/s" wait >"$D/py.out" 2>"$D/py.err"
	local pid=$!
	wait_for_waiters "$D/s" 1
	sem_post "$D/s"
	poll 5 gone "$pid"
	reap "$pid"
	assert_equal "$status" 0
	assert_equal "$(cat "$D/py.out")" acquired
	assert_equal "$(cat "$D/py.err")" ""
	run sem_peek "$D/s"
	assert_output 0
}

@test "a count Python holds with undo comes back when it is killed -9" {
	sem_post "$D/s"
	bg "$PY" "$D/py.py" "$HELPER" "$D/s" hold >"$D/py.out" 2>"$D/py.err"
	local pid=$!
	poll 5 grep -qx held "$D/py.out"
	run sem_peek "$D/s"
	assert_output 0
	kill -9 "$pid"
	reap "$pid"
	assert_equal "$status" 137
	poll 2 value_is 1
	assert_equal "$(cat "$D/py.err")" ""
}

@test "the README's Python example runs as written" {
	# The README's block after `<!-- recipe: python -->`, with two edits: the name becomes
	# this test's, and the line marked "# your command" prints the value seen inside the
	# `with` (the count taken) instead of running make. semctl-helper is found on PATH, as
	# after `make install`.
	local text line n_name=0 n_cmd=0
	text=$(awk '$0 == "<!-- recipe: python -->" { f = 1; next }
		f == 1 { if ($0 != "```python") exit 2; f = 2; next }
		f == 2 && $0 == "```" { f = 3; exit }
		f == 2 { print }
		END { if (f != 3) exit 2 }' "$REPO_ROOT/README.md") ||
		fail "README.md has no \`\`\`python block after <!-- recipe: python -->"
	while IFS= read -r line; do
		if [[ $line == *'# your command' ]]; then
			line="    print(\"inside\", sem.value, flush=True)"
			n_cmd=$((n_cmd + 1))
		elif [[ $line == *'"/tmp/build-slots"'* ]]; then
			line=${line//\/tmp\/build-slots/$D/s}
			n_name=$((n_name + 1))
		fi
		printf '%s\n' "$line"
	done <<<"$text" >"$D/example.py"
	assert_equal "$n_name/$n_cmd" 1/1
	sem_post "$D/s" 2
	PATH=$(dirname "$HELPER"):$PATH run --separate-stderr "$PY" "$D/example.py"
	assert_success
	assert_output "inside 1"
	assert_equal "$stderr" ""
	run sem_peek "$D/s"
	assert_output 2
}
