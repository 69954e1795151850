# shellcheck shell=bash
# The kind fixture of the contract suites (bats/contract/), loaded after test_helper: the
# same tests run once per kind of semaphore, chosen by SEM_TEST_KIND.
#
#   SEM_TEST_KIND=sysv   (the default) System V sets, named by a path under the test's $D
#   SEM_TEST_KIND=posix  POSIX named semaphores, posix:/NAME (/dev/shm/sem.NAME)
#   SEM_TEST_KIND=redis  Redis semaphores, redis:NAME, on the server in SEM_REDIS_URL
#                        (make bats-contract starts one with tests/redis/server.sh)
#
# sem_name BASE           this test's name for BASE
# waiters_of NAME         the blocked waiters, if the kind can tell; else empty
# wait_for_blocked NAME N poll until N processes are blocked on NAME
# require_capability CAP  skip unless the kind has CAP (relax, atomic_post_n, take_n,
#                         waiters)
# value_max               the largest value the kind holds

# test_helper takes the repository to be the test file's parent; here it is two up.
REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd -P)
export REPO_ROOT
HELPER=$REPO_ROOT/target/release/semctl-helper
export HELPER

# shellcheck source=bats/redis.bash
source "$REPO_ROOT/bats/redis.bash"

SEM_TEST_KIND=${SEM_TEST_KIND:-sysv}
case $SEM_TEST_KIND in
sysv | posix) ;;
redis)
	if [[ ${SEM_REDIS_URL:-} != redis://* ]]; then
		echo "SEM_TEST_KIND=redis needs SEM_REDIS_URL=redis://HOST:PORT, a server the tests may write to (tests/redis/server.sh with CMD... starts one)" >&2
		exit 1
	fi
	export SEM_REDIS_URL
	;;
*)
	echo "SEM_TEST_KIND must be sysv, posix or redis, not '$SEM_TEST_KIND'" >&2
	exit 1
	;;
esac
export SEM_TEST_KIND

# The POSIX and Redis names of this test: unique per bats run and test, so that runs side by side
# (and the other kind's run) never meet, and the teardown finds every one.
_kind_prefix() {
	echo "st-${BATS_ROOT_PID}-${BATS_SUITE_TEST_NUMBER}-"
}

# sem_name BASE: this test's name for BASE (letters, digits, '.', '_' and '-' only).
sem_name() {
	case $SEM_TEST_KIND in
	sysv) echo "$D/$1" ;;
	posix) echo "posix:/$(_kind_prefix)$1" ;;
	redis) echo "redis:$(_kind_prefix)$1" ;;
	esac
}

# value_max: the largest value a semaphore of this kind holds.
value_max() {
	case $SEM_TEST_KIND in
	sysv) echo 32767 ;;
	posix | redis) echo 2147483647 ;;
	esac
}

# require_capability CAP: skip the test, saying why, when the kind lacks CAP.
#   relax          sem_relax (it needs the count of blocked waiters)
#   atomic_post_n  a post of N in one step, all or nothing
#   take_n         taking N counts in one step (sem_run -n, sem_hold -n)
#   waiters        the count of blocked waiters (status shows it)
require_capability() {
	case $SEM_TEST_KIND:$1 in
	sysv:relax | sysv:atomic_post_n | sysv:take_n | sysv:waiters) ;;
	redis:relax | redis:atomic_post_n | redis:take_n | redis:waiters) ;;
	posix:relax) skip "posix semaphores can't count their waiters, so there is no relax" ;;
	posix:atomic_post_n) skip "posix has no atomic post of N: sem_post(3) adds one at a time" ;;
	posix:take_n) skip "posix has no atomic take of N counts" ;;
	posix:waiters) skip "posix semaphores can't count their waiters (status shows null)" ;;
	*) fail "require_capability: unknown capability '$1' (kind $SEM_TEST_KIND)" ;;
	esac
}

# waiters_of NAME: how many processes are blocked on NAME, if the kind can tell (System V:
# the kernel's count; Redis: the length of the queue, from status --json); empty otherwise.
waiters_of() {
	case $SEM_TEST_KIND in
	sysv) waiters "$1" ;;
	posix) echo '' ;;
	redis) "$HELPER" status --json "$1" 2>/dev/null | jq -r '.waiters // empty' ;;
	esac
}

# _kind_sleepers NAME: the number of `semctl-helper wait|hold|run` processes naming NAME
# that are asleep (state S). A POSIX waiter sleeps in sem_timedwait, but so does a
# holder that holds its count: callers count only where no holder of NAME holds.
_kind_sleepers() {
	ps -e -ww -o stat=,args= | awk -v name="$1" '
		$1 ~ /^S/ && $2 ~ /(^|\/)semctl-helper$/ && $3 ~ /^(wait|hold|run)$/ {
			for (i = 4; i <= NF; i++) if ($i == name) { n++; break }
		}
		END { print n + 0 }'
}

# wait_for_blocked NAME N [SECONDS]: poll until N processes are blocked on NAME: the
# kernel's waiter count for System V, the queue's length for Redis; for POSIX, which can't count its waiters, until N
# helpers waiting for NAME are asleep, then a short settle (asleep may still be on the
# way into sem_timedwait).
wait_for_blocked() {
	local name=$1 n=$2 limit=${3:-10} i
	case $SEM_TEST_KIND in
	sysv) wait_for_waiters "$name" "$n" "$limit" ;;
	redis)
		for ((i = 0; i < limit * 50; i++)); do
			[[ $(waiters_of "$name") == "$n" ]] && return 0
			sleep 0.02
		done
		echo "expected $n waiters queued on $name, have $(waiters_of "$name")" >&2
		return 1
		;;
	posix)
		for ((i = 0; i < limit * 50; i++)); do
			if [[ $(_kind_sleepers "$name") == "$n" ]]; then
				sleep 0.1
				return 0
			fi
			sleep 0.02
		done
		echo "expected $n helpers asleep on $name, have $(_kind_sleepers "$name")" >&2
		return 1
		;;
	esac
}

# The teardown: test_helper's (jobs, records, the kernel-set leak check), then for POSIX
# every /dev/shm/sem.st-ROOTPID-TEST-* this test made, for Redis every name
# st-ROOTPID-TEST-* with keys on the server: destroyed through the helper, and anything
# the helper could not remove is a leak: removed, and the test fails.
eval "_kind_base_teardown() $(declare -f teardown | tail -n +2)"
teardown() {
	local rc=0 f left=''
	_kind_base_teardown || rc=$?
	case $SEM_TEST_KIND in
	posix)
		for f in /dev/shm/sem."$(_kind_prefix)"*; do
			[[ -e $f || -L $f ]] || continue
			"$HELPER" destroy "posix:/${f#/dev/shm/sem.}" >/dev/null 2>&1 || true
		done
		for f in /dev/shm/sem."$(_kind_prefix)"*; do
			[[ -e $f || -L $f ]] || continue
			left+=" ${f##*/}"
			rm -f "$f"
		done
		if [[ -n $left ]]; then
			echo "leaked POSIX semaphores (the helper's destroy left them):$left" >&2
			rc=1
		fi
		;;
	redis)
		left=$(redis_clean "$(_kind_prefix)")
		if [[ -n $left ]]; then
			echo "leaked Redis keys (the helper's destroy left them): ${left//$'\n'/ }" >&2
			rc=1
		fi
		;;
	esac
	return "$rc"
}
