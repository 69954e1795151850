# shellcheck shell=bash
# Shared setup for the bats suites: a private HOME and directory per test, the library
# sourced fresh, and a check after every test that no kernel set leaked.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd -P)
export REPO_ROOT
HELPER=$REPO_ROOT/target/release/semctl-helper
export HELPER

setup() {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	# A directory for absolute names; world-searchable so that tests dropping to an
	# unprivileged uid can reach it.
	D=$BATS_TEST_TMPDIR/d
	mkdir -p "$D"
	# bats makes its run directory 0700; cross-user tests (uid 65534, maybe in group 0)
	# must be able to reach $D.
	chmod go+x "$BATS_RUN_TMPDIR" "$BATS_TEST_TMPDIR"
	chmod 755 "$D"
	unset SEMCTL_HELPER SEM_VERBOSE
	# shellcheck source=sh/sem.sh
	source "$REPO_ROOT/sh/sem.sh"
	SETS_BEFORE=$(kernel_sets)
}

teardown() {
	local f pids
	pids=$(jobs -p)
	if [[ -n $pids ]]; then
		# shellcheck disable=SC2086 # one pid per word
		kill -9 $pids 2>/dev/null || true
		wait 2>/dev/null || true
	fi
	# Remove whatever a test left: every record under its directories, by its owner.
	while IFS= read -r -d '' f; do
		if head -c 6 "$f" 2>/dev/null | grep -q '^sem/1 '; then
			local owner
			owner=$(stat -c %u "$f")
			if [[ $owner == "$(id -u)" ]]; then
				"$HELPER" destroy "$f" 2>/dev/null || true
			else
				setpriv --reuid="$owner" --regid="$(stat -c %g "$f")" --clear-groups \
					"$HELPER" destroy "$f" 2>/dev/null || true
			fi
		fi
	done < <(find "$BATS_TEST_TMPDIR" -type f -print0 2>/dev/null)
	# Leaks are checked only in a private IPC namespace (make bats runs the suites under
	# `unshare --ipc`): elsewhere other processes' sets come and go, and are not ours.
	if [[ ${SEM_TEST_PRIVATE_IPC:-} == 1 ]]; then
		local leaked
		leaked=$(comm -13 <(echo "$SETS_BEFORE") <(kernel_sets))
		if [[ -n $leaked ]]; then
			echo "leaked kernel sets (ids): $leaked" >&2
			for f in $leaked; do ipcrm -s "$f" 2>/dev/null || true; done
			return 1
		fi
	fi
}

# kernel_sets: the ids of all semaphore sets, sorted.
kernel_sets() {
	ipcs -s | awk '$2 ~ /^[0-9]+$/ { print $2 }' | sort
}

# set_id NAME: the kernel set id recorded in NAME's file.
set_id() {
	sed -n 's/^sem\/1 .* id=\([0-9]*\) .*/\1/p' "$1"
}

# waiters NAME: how many processes the kernel reports blocked decrementing NAME.
waiters() {
	ipcs -s -i "$(set_id "$1")" 2>/dev/null | awk '$1 == "0" && NF >= 5 { print $3 }'
}

# wait_for_waiters NAME N [SECONDS]: poll until N processes are blocked on NAME.
wait_for_waiters() {
	local name=$1 n=$2 limit=${3:-10} i
	for ((i = 0; i < limit * 100; i++)); do
		if [[ $(waiters "$name") == "$n" ]]; then
			return 0
		fi
		sleep 0.01
	done
	echo "expected $n waiters on $name, have $(waiters "$name")" >&2
	return 1
}

# now: seconds since the epoch, with microseconds.
now() {
	echo "$EPOCHREALTIME"
}

# elapsed_between START END LOW HIGH: assert LOW <= END-START <= HIGH (seconds).
assert_elapsed() {
	local start=$1 end=$2 low=$3 high=$4
	if ! awk -v s="$start" -v e="$end" -v lo="$low" -v hi="$high" \
		'BEGIN { d = e - s; exit !(d >= lo && d <= hi) }'; then
		fail "elapsed $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }') s, expected between $low and $high s"
	fi
}

# as_nobody CMD...: run CMD as the unprivileged uid 65534, or skip the test.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}

# require_setpriv: skip unless we are root and setpriv can drop to uid 65534.
require_setpriv() {
	if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null; then
		skip "cross-user tests need root and setpriv to drop to an unprivileged uid"
	fi
	if ! setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
		skip "setpriv cannot drop to uid 65534 here"
	fi
}

# reachable_by_nobody: skip unless uid 65534 can be dropped to and can reach $D.
reachable_by_nobody() {
	require_setpriv
	as_nobody test -x "$D" || skip "uid 65534 cannot reach $D"
}

# as_nobody_sem FUNC ARGS...: run a sem_* function as uid 65534, with sem.sh sourced.
as_nobody_sem() {
	# shellcheck disable=SC2016 # $REPO_ROOT and $@ expand in the child shell
	as_nobody bash -c 'source "$REPO_ROOT/sh/sem.sh"; "$@"' _ "$@"
}

# assert_silent: the last `run --separate-stderr` printed nothing on either stream.
assert_silent() {
	assert_equal "$output" ""
	assert_equal "$stderr" ""
}

# assert_stderr_one_line: the last run's stderr is exactly one non-empty line.
assert_stderr_one_line() {
	if [[ -z $stderr || $stderr == *$'\n'* ]]; then
		fail "expected exactly one line on stderr, got: '$stderr'"
	fi
}

# assert_one_line_stderr: nothing on stdout and exactly one non-empty line on stderr.
assert_one_line_stderr() {
	assert_equal "$output" ""
	assert_stderr_one_line
}

# assert_set_exists ID: the kernel has semaphore set ID (`ipcs -s -i` exits 0 even for
# an id it doesn't find, so ask `ipcs -s` for the list).
assert_set_exists() {
	kernel_sets | grep -qx "$1" || fail "kernel set $1 does not exist"
}

# refute_set_exists ID: the kernel has no semaphore set ID.
refute_set_exists() {
	if kernel_sets | grep -qx "$1"; then
		fail "kernel set $1 still exists"
	fi
}

# bg CMD...: run CMD in the background with bats' output descriptor closed, so that a
# straggler can't keep bats waiting. The job's pid is in $!.
bg() {
	"$@" 3>&- &
}

# reap PID: wait for the background job PID and put its exit status in $status, as run
# would (run itself can't: it waits in a subshell, which has no children).
# shellcheck disable=SC2034 # status and output are read by bats' assert_* functions
reap() {
	status=0 output=''
	wait "$1" || status=$?
}

# bg_wait OUT NAME [TIMEOUT]: run sem_wait in the background. When it returns it writes
# "STATUS START END" to OUT (times from $EPOCHREALTIME, taken in the waiter itself), and
# leaves its stdout and stderr in OUT.stdout and OUT.stderr. fd 3 is closed so that bats
# doesn't wait for the job. The job's pid is in $!.
bg_wait() {
	local out=$1
	shift
	(
		start=$EPOCHREALTIME
		rc=0
		sem_wait "$@" >"$out.stdout" 2>"$out.stderr" || rc=$?
		echo "$rc $start $EPOCHREALTIME" >"$out.tmp"
		mv "$out.tmp" "$out"
	) 3>&- &
}

# await OUT [SECONDS]: poll until the background waiter has written OUT.
await() {
	local i limit=${2:-10}
	for ((i = 0; i < limit * 100; i++)); do
		if [[ -e $1 ]]; then
			return 0
		fi
		sleep 0.01
	done
	fail "the waiter writing $1 did not return within $limit s"
}

# assert_waiter_silent OUT: the background waiter writing OUT printed nothing.
assert_waiter_silent() {
	assert_equal "$(cat "$1.stdout")" ""
	assert_equal "$(cat "$1.stderr")" ""
}

# helper_of PID: the pid of the semctl-helper that process PID runs (polls up to 5 s).
helper_of() {
	local i pid=''
	for ((i = 0; i < 500; i++)); do
		pid=$(pgrep -P "$1" -x semctl-helper) && break
		sleep 0.01
	done
	[[ -n $pid ]] || fail "no semctl-helper under pid $1"
	echo "$pid"
}

# builtin_in_use: whether this shell's sem.sh runs its quick operations in the shell, by the
# builtin (make bats runs every suite with it and again with SEM_BUILTIN=0).
builtin_in_use() {
	[[ $(declare -f sem_post) == *'builtin __sem'* ]]
}

# use_helper: from here on, this test's sem.sh calls, and those of the shells it starts,
# use the helper: for tests of the helper's own process (its signals, its parent watch).
use_helper() {
	export SEM_BUILTIN=0
	# shellcheck source=sh/sem.sh
	source "$REPO_ROOT/sh/sem.sh"
}

# waiter_of PID [NAME]: the process that sleeps in the sem_wait on NAME (a path by default)
# that PID runs: PID itself when the builtin waits in the shell (System V names), else
# PID's semctl-helper child.
waiter_of() {
	if builtin_in_use && [[ ${2:-/} != posix:* && ${2:-/} != redis:* && ${2:-/} != rediss:* ]]; then
		echo "$1"
		return 0
	fi
	helper_of "$1"
}

# poll SECONDS CMD...: run CMD every 20 ms until it succeeds; fail after SECONDS.
poll() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 50; i++)); do
		if "$@"; then
			return 0
		fi
		sleep 0.02
	done
	"$@" || fail "not within $limit s: $*"
}

# gone PID: process PID has ended (a zombie not yet reaped counts as alive).
gone() {
	! kill -0 "$1" 2>/dev/null
}

# val NAME: NAME's value, as the helper reads it (any kind).
val() {
	"$HELPER" peek "$1"
}

# wait_for_value NAME V [SECONDS]: poll until NAME's value is V.
wait_for_value() {
	local i limit=${3:-10}
	for ((i = 0; i < limit * 100; i++)); do
		[[ $(val "$1") == "$2" ]] && return 0
		sleep 0.01
	done
	fail "the value of $1 is $(val "$1"), not $2, after $limit s"
}

# wait_for_file FILE [SECONDS]: poll until FILE exists.
wait_for_file() {
	local i limit=${2:-10}
	for ((i = 0; i < limit * 100; i++)); do
		[[ -e $1 ]] && return 0
		sleep 0.01
	done
	fail "$1 did not appear within $limit s"
}

# bg_run OUT ARG...: `sem_run ARG...` in the background, like bg_wait: when it returns it
# writes "STATUS START END" to OUT, its stdout and stderr being in OUT.stdout and
# OUT.stderr. Its pid (the parent of any helper it starts) is in $!.
bg_run() {
	local out=$1
	shift
	(
		start=$EPOCHREALTIME
		rc=0
		sem_run "$@" >"$out.stdout" 2>"$out.stderr" || rc=$?
		echo "$rc $start $EPOCHREALTIME" >"$out.tmp"
		mv "$out.tmp" "$out"
	) 3>&- &
}

# rc_of OUT: the status a bg_run job wrote to OUT.
rc_of() {
	local rc rest
	read -r rc rest <"$1"
	echo "$rc"
}
