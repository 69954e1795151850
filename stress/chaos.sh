#!/usr/bin/env bash
# chaos.sh DURATION_SECONDS: sem under random signals (issue 4, faults).
#
# Two semaphores in a fresh directory:
#   s   value K. RUN_WORKERS bash workers loop on `sem_run s CMD`, where CMD is a program
#       (`sleep 0.0x`, held by `semctl-helper run`) or a shell function that sleeps (held
#       by a `semctl-helper hold` process), some with `-w` timeouts. Every count is held
#       with SEM_UNDO, so no signal may lose one: at the end the value must be exactly K.
#   s2  value K2. WP_WORKERS bash workers loop on plain `sem_wait s2; sleep; sem_post s2`.
#       A wait/post pair killed between the two legitimately loses its count (the
#       contract of wait/post), so s2 is checked with bounds instead of an exact value:
#         K2 + T - L <= final <= K2 + T
#       T: counts this script posted to refill s2 after all of them were lost (when every
#          s2 worker was blocked on a 0 value);
#       L: the counts a signal may have lost: wp workers that died between writing "in"
#          (just before sem_wait; "held" once it returned 0) and "out" (just after
#          sem_post), failed sem_posts, and SIGKILLs sent to a wp worker's
#          `semctl-helper wait` (SIGTERM or SIGINT after the count was taken must not
#          lose it: the helper then reports 0).
# Meanwhile this script, the killer, sends SIGKILL, SIGTERM, SIGINT or SIGSTOP (followed
# by SIGCONT 1 to 3 rounds later) to a random worker shell, helper or command, and
# respawns the workers that died. Every process of the run carries CHAOS_TAG in its
# environment, which is how the killer finds them (orphans included) and how the end
# checks that none is left.
#
# At the end: SIGCONT everything, SIGKILL the sem_run workers wherever they are, let the
# wp workers finish their round (SIGKILL after 5 s), wait until every tagged process has
# ended (15 s at most), then check s == K with no waiters, s2 within its bounds with no waiters,
# value(s) <= K and value(s2) <= K2 + T at every sample during the run, no kernel set
# leaked (ipcs -s before and after, in a private IPC namespace when root), no stray
# process. Prints one summary line; exits 1 if any invariant failed, 2 on usage errors.
#
# Environment: CHAOS_K (3), CHAOS_K2 (2), CHAOS_RUN_WORKERS (4), CHAOS_WP_WORKERS (3),
# CHAOS_KEEP=1 keeps the work directory (logs) for inspection. Helpers seen running over
# 1 s after their shell died are a failure (CHAOS_ORPHANS_FAIL=0 only reports them).
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HELPER=$REPO/target/release/semctl-helper
SELF=$REPO/stress/chaos.sh

# A 10-50 ms nap, as an external command.
nap() {
	{ sleep "0.0$((RANDOM % 5 + 1))"; } 2>/dev/null
}

# run_worker DIR ID: loop on sem_run over s, recording each outcome by appending one byte
# to a file (an O_APPEND write of one byte can't be torn by a kill).
run_worker() {
	local dir=$1 id=$2 rc kind
	local -a w
	# shellcheck source=sh/sem.sh
	source "$REPO/sh/sem.sh"
	while :; do
		w=()
		if ((RANDOM % 4 == 0)); then
			w=(-w 0.3)
		fi
		rc=0
		if ((RANDOM % 2)); then
			kind=ext
			sem_run "${w[@]}" "$dir/s" sleep "0.0$((RANDOM % 5 + 1))" || rc=$?
		else
			kind=fn
			sem_run "${w[@]}" "$dir/s" nap || rc=$?
		fi
		case $rc in
		0) printf x >>"$dir/run.ok.$kind" ;;
		*) printf '%s %s %s\n' "$kind" "${w[*]:-nowait}" "$rc" >>"$dir/run.other" ;;
		esac
	done
}

# wp_worker DIR ID: loop on sem_wait / sem_post over s2, saying in state.ID whether it
# may hold a count.
wp_worker() {
	local dir=$1 id=$2 n=0 state
	state=$dir/state.$id
	# shellcheck source=sh/sem.sh
	source "$REPO/sh/sem.sh"
	# The stop file ends the loop between rounds, holding nothing.
	while [[ ! -e $dir/stop ]]; do
		n=$((n + 1))
		printf 'in %d\n' "$n" >"$state"
		if sem_wait "$dir/s2"; then
			printf 'held %d\n' "$n" >"$state"
			nap
			if sem_post "$dir/s2"; then
				printf x >>"$dir/wp.ok"
			else
				printf x >>"$dir/wp.postfail"
			fi
		else
			printf x >>"$dir/wp.waitfail"
		fi
		printf 'out %d\n' "$n" >"$state"
	done
}

if [[ ${1:-} == --worker ]]; then
	case $2 in
	run) run_worker "$3" "$4" ;;
	wp) wp_worker "$3" "$4" ;;
	esac
	exit 0
fi

# ---- the killer ----

if [[ $# != 1 || ! $1 =~ ^[0-9]+$ || $1 == 0 ]]; then
	echo "usage: chaos.sh DURATION_SECONDS" >&2
	exit 2
fi
if [[ ! -x $HELPER ]]; then
	echo "chaos.sh: $HELPER is missing (run make)" >&2
	exit 2
fi
# A private IPC namespace, where ipcs shows only our sets (root only; nested is fine).
if [[ -z ${CHAOS_IN_NS:-} && $(id -u) == 0 ]] && unshare --ipc true 2>/dev/null; then
	CHAOS_IN_NS=1 exec unshare --ipc bash "$SELF" "$@"
fi

DURATION=$1
K=${CHAOS_K:-3}
K2=${CHAOS_K2:-2}
RUN_WORKERS=${CHAOS_RUN_WORKERS:-4}
WP_WORKERS=${CHAOS_WP_WORKERS:-3}
TAG=chaos-$$-$RANDOM$RANDOM
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sem-chaos.XXXXXX")
FAILURES=()

fail() {
	FAILURES+=("$*")
	echo "chaos: FAIL: $*" >&4
}

kernel_sets() {
	ipcs -s | awk '$2 ~ /^[0-9]+$/ { print $2 }' | sort
}

# json_field JSON FIELD: a numeric field of `semctl-helper status --json`.
json_field() {
	[[ $1 =~ \"$2\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# bytes FILE: its size (0 if missing): the number of events appended to it.
bytes() {
	local s
	s=$(stat -c %s "$1" 2>/dev/null) || s=0
	echo "$s"
}

SETS_BEFORE=$(kernel_sets)
"$HELPER" init "$DIR/s" "$K" || exit 1
"$HELPER" init "$DIR/s2" "$K2" || exit 1

declare -A WPID=() WKIND=()
declare -A SENT=()     # signal -> count
declare -A TARGETS=()  # target kind -> count
declare -A BOTH=()     # kind:signal -> count
declare -A ORPHAN_SINCE=() ORPHANS=()  # pid -> first seen orphaned (us); pid -> command
declare -a CONT_PIDS=() CONT_DUE=()
RESPAWNS=0 DEATHS_HELD=0 DEATHS_WAITING=0 KILL9_WP_WAIT=0 TOPUPS=0 SAMPLES=0 ROUND=0
MAX_S=0 MAX_S2=0

# spawn ID KIND: start worker ID. SIGINT and SIGQUIT are set back to their defaults (a
# background job starts with them ignored), so that SIGINT reaches it as from a terminal.
spawn() {
	env --default-signal=INT,QUIT CHAOS_TAG="$TAG" CHAOS_WORKER="$1" \
		bash "$SELF" --worker "$2" "$DIR" "$1" \
		</dev/null >>"$DIR/out.$1" 2>>"$DIR/err.$1" 3>&- &
	WPID[$1]=$!
	WKIND[$1]=$2
}

# dead PID: PID has ended (gone, or a zombie waiting for us).
dead() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	stat=${stat##*) }
	[[ ${stat%% *} == Z ]]
}

# reap ID: collect worker ID, which has ended; count a wp worker that died holding.
reap() {
	local state=''
	wait "${WPID[$1]}" 2>/dev/null
	if [[ ${WKIND[$1]} == wp ]]; then
		{ read -r state <"$DIR/state.$1"; } 2>/dev/null
		case $state in
		out*) ;;
		held*) DEATHS_HELD=$((DEATHS_HELD + 1)) ;;
		*) DEATHS_WAITING=$((DEATHS_WAITING + 1)) ;;
		esac
		rm -f "$DIR/state.$1"
	fi
}

# scan: list the live processes of this run in P_PID, P_KIND (worker, helper-CMD, command,
# other) and P_WORKER. Reads /proc with builtins only: no forks.
scan() {
	local d pid stat comm state ppid env_ args e worker tagged caller rest
	local -a cands=()
	local c i busy
	P_PID=() P_KIND=() P_WORKER=()
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		{ read -r stat <"$d/stat"; } 2>/dev/null || continue
		comm=${stat#*(}
		comm=${comm%)*}
		state=${stat##*) }
		rest=${stat##*) }
		state=${rest%% *}
		rest=${rest#* }
		ppid=${rest%% *}
		[[ $state == Z ]] && continue
		case $comm in bash | sleep | semctl-helper | env) ;; *) continue ;; esac
		{ mapfile -d '' -t env_ <"$d/environ"; } 2>/dev/null || continue
		tagged=0 worker='' caller=''
		for e in "${env_[@]}"; do
			case $e in
			"CHAOS_TAG=$TAG") tagged=1 ;;
			CHAOS_WORKER=*) worker=${e#CHAOS_WORKER=} ;;
			SEMCTL_PARENT=*) caller=${e#SEMCTL_PARENT=} ;;
			esac
		done
		((tagged)) || continue
		P_PID+=("$pid")
		P_WORKER+=("$worker")
		if [[ $comm == bash && ${WPID[$worker]:-} == "$pid" ]]; then
			P_KIND+=(worker)
		elif [[ $comm == semctl-helper ]]; then
			{ mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null
			P_KIND+=("helper-${args[1]:-unknown}")
			# A helper still waiting whose shell is gone. Its shell is the process named
			# in SEMCTL_PARENT (a holder leaves its shell's process tree on purpose and
			# watches it through a pidfd), or else its parent.
			if [[ ${args[1]:-} == @(wait|run|hold) && ${caller:-$ppid} != "${WPID[$worker]:-}" ]]; then
				cands+=("$pid:${args[1]}:$worker")
			fi
		elif [[ $comm == sleep ]]; then
			P_KIND+=(command)
		else
			P_KIND+=(other)
		fi
	done
	# A function's holder outlives a killed shell on purpose while the processes the
	# function started still run (they inherit its pipe): only one with none is orphaned.
	for c in "${cands[@]}"; do
		IFS=: read -r pid comm worker <<<"$c"
		busy=0
		if [[ $comm == hold ]]; then
			for i in "${!P_PID[@]}"; do
				if [[ ${P_KIND[$i]} == command && ${P_WORKER[$i]} == "$worker" ]]; then
					busy=1
				fi
			done
		fi
		if ((busy)); then
			unset "ORPHAN_SINCE[$pid]"
		else
			orphan_seen "$pid" "$comm"
		fi
	done
}

# orphan_seen PID CMD: PID, a `semctl-helper CMD`, outlives its shell. The helper's
# parent-death signal should end it at once; one seen orphaned for over 1 s is counted.
orphan_seen() {
	local now=${EPOCHREALTIME/./}
	if [[ -z ${ORPHAN_SINCE[$1]:-} ]]; then
		ORPHAN_SINCE[$1]=$now
	elif ((now - ORPHAN_SINCE[$1] > 1000000)) && [[ -z ${ORPHANS[$1]:-} ]]; then
		ORPHANS[$1]=$2
		echo "chaos: orphaned helper $1 ($2) still running 1 s after its shell died:" \
			"$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" >&4
	fi
}

# strike: send one random signal to one random process of the run.
strike() {
	local want idx=() i n pick sig kind
	scan
	case $((RANDOM % 20)) in
	[0-5]) want=worker ;;
	1[5-9]) want='command' ;;
	*) want=helper ;;
	esac
	for i in "${!P_PID[@]}"; do
		[[ ${P_KIND[i]} == "$want"* ]] && idx+=("$i")
	done
	n=${#idx[@]}
	((n)) || return 0
	pick=${idx[RANDOM % n]}
	kind=${P_KIND[pick]}
	case $((RANDOM % 4)) in
	0) sig=KILL ;;
	1) sig=TERM ;;
	2) sig=INT ;;
	3) sig=STOP ;;
	esac
	kill -s "$sig" "${P_PID[pick]}" 2>/dev/null || return 0
	SENT[$sig]=$((${SENT[$sig]:-0} + 1))
	TARGETS[$kind]=$((${TARGETS[$kind]:-0} + 1))
	BOTH[$kind:$sig]=$((${BOTH[$kind:$sig]:-0} + 1))
	if [[ $sig == STOP ]]; then
		CONT_PIDS+=("${P_PID[pick]}")
		CONT_DUE+=("$((ROUND + 1 + RANDOM % 3))")
	fi
	if [[ $sig == KILL && $kind == helper-wait && ${WKIND[${P_WORKER[pick]}]:-} == wp ]]; then
		KILL9_WP_WAIT=$((KILL9_WP_WAIT + 1))
	fi
}

# continue_due [all]: SIGCONT the stopped processes whose time has come (or all).
continue_due() {
	local i pids=() dues=()
	for i in "${!CONT_PIDS[@]}"; do
		if [[ ${1:-} == all ]] || ((CONT_DUE[i] <= ROUND)); then
			kill -CONT "${CONT_PIDS[i]}" 2>/dev/null
			SENT[CONT]=$((${SENT[CONT]:-0} + 1))
		else
			pids+=("${CONT_PIDS[i]}")
			dues+=("${CONT_DUE[i]}")
		fi
	done
	CONT_PIDS=("${pids[@]}")
	CONT_DUE=("${dues[@]}")
}

# sample: check the values against their ceilings; refill s2 when all its counts are lost.
sample() {
	local js v w
	js=$("$HELPER" status --json "$DIR/s") || {
		fail "status of s failed"
		return
	}
	v=$(json_field "$js" value)
	((v > MAX_S)) && MAX_S=$v
	((v > K)) && fail "s has value $v > $K (a count was invented)"
	js=$("$HELPER" status --json "$DIR/s2") || {
		fail "status of s2 failed"
		return
	}
	v=$(json_field "$js" value)
	w=$(json_field "$js" waiters)
	((v > MAX_S2)) && MAX_S2=$v
	((v > K2 + TOPUPS)) && fail "s2 has value $v > $K2 + $TOPUPS refills (a count was invented)"
	SAMPLES=$((SAMPLES + 1))
	# Every wp worker asleep on a 0 value: no count is left in s2. Refill it so that the
	# workers keep running (T grows; the bounds stay exact whatever else is racing).
	if ((v == 0 && w >= WP_WORKERS)); then
		"$HELPER" post "$DIR/s2" "$K2" && TOPUPS=$((TOPUPS + K2))
	fi
}

# bash reports each killed background job on its own stderr ("line N: PID Killed ..."),
# whenever it notices: send that to a log, and our own messages to fd 4.
exec 4>&2 2>>"$DIR/killer.err"
for ((i = 0; i < RUN_WORKERS; i++)); do spawn "r$i" run; done
for ((i = 0; i < WP_WORKERS; i++)); do spawn "w$i" wp; done

START=$EPOCHREALTIME
END_US=$((${START/./} + DURATION * 1000000))
while ((${EPOCHREALTIME/./} < END_US)); do
	ROUND=$((ROUND + 1))
	strike
	continue_due
	for id in "${!WPID[@]}"; do
		if dead "${WPID[$id]}"; then
			reap "$id"
			spawn "$id" "${WKIND[$id]}"
			RESPAWNS=$((RESPAWNS + 1))
		fi
	done
	sample
	sleep "0.0$((RANDOM % 6))"
done

# ---- the end: stop everything ----
continue_due all
scan
for pid in "${P_PID[@]}"; do kill -CONT "$pid" 2>/dev/null; done
# The wp workers may finish their round (up to 5 s), so that the end itself loses no
# count of s2; the sem_run workers are killed wherever they are.
touch "$DIR/stop"
for id in "${!WPID[@]}"; do
	[[ ${WKIND[$id]} == run ]] && kill -KILL "${WPID[$id]}" 2>/dev/null
done
for ((i = 0; i < 500; i++)); do
	busy=0
	for id in "${!WPID[@]}"; do
		[[ ${WKIND[$id]} == wp ]] && ! dead "${WPID[$id]}" && busy=1
	done
	((busy)) || break
	sleep 0.01
done
for id in "${!WPID[@]}"; do kill -KILL "${WPID[$id]}" 2>/dev/null; done
for id in "${!WPID[@]}"; do reap "$id"; done
STOPPED_AT=$EPOCHREALTIME
# Orphans end by themselves: holders and waiters with their shell, a `run` program when
# its sleep is over.
for ((i = 0; i < 1500; i++)); do
	scan
	((${#P_PID[@]} == 0)) && break
	for pid in "${P_PID[@]}"; do kill -CONT "$pid" 2>/dev/null; done
	sleep 0.01
done
if ((${#P_PID[@]})); then
	for i in "${!P_PID[@]}"; do
		pid=${P_PID[i]}
		fail "stray process $pid (${P_KIND[i]} of worker ${P_WORKER[i]}) 15 s after the workers were killed:" \
			"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" \
			"state $(awk '/^State/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" \
			"ppid $(awk '/^PPid/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" \
			"wchan $(cat "/proc/$pid/wchan" 2>/dev/null)"
	done
	for pid in "${P_PID[@]}"; do kill -KILL "$pid" 2>/dev/null; done
fi
SETTLE=$(awk -v a="$STOPPED_AT" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')

exec 2>&4
# ---- the checks ----
js=$("$HELPER" status --json "$DIR/s")
S_VAL=$(json_field "$js" value)
S_WAIT=$(json_field "$js" waiters)
js=$("$HELPER" status --json "$DIR/s2")
S2_VAL=$(json_field "$js" value)
S2_WAIT=$(json_field "$js" waiters)
POSTFAIL=$(bytes "$DIR/wp.postfail")
WAITFAIL=$(bytes "$DIR/wp.waitfail")
MAYLOSE=$((DEATHS_HELD + DEATHS_WAITING + POSTFAIL + KILL9_WP_WAIT))
LOST=$((K2 + TOPUPS - S2_VAL))
[[ $S_VAL == "$K" ]] || fail "s (sem_run) ends at $S_VAL, not $K"
[[ $S_WAIT == 0 ]] || fail "s has $S_WAIT waiters at the end"
[[ $S2_WAIT == 0 ]] || fail "s2 has $S2_WAIT waiters at the end"
((S2_VAL <= K2 + TOPUPS)) || fail "s2 (wait/post) ends at $S2_VAL > $K2 + $TOPUPS refills: a count was invented"
((LOST <= MAYLOSE)) || fail "s2 lost $LOST counts, but signals can explain at most $MAYLOSE" \
	"($DEATHS_HELD deaths holding, $DEATHS_WAITING deaths in sem_wait, $POSTFAIL failed posts, $KILL9_WP_WAIT SIGKILLs to waits)"
"$HELPER" destroy "$DIR/s" || fail "destroy s failed"
"$HELPER" destroy "$DIR/s2" || fail "destroy s2 failed"
SETS_AFTER=$(kernel_sets)
if [[ $SETS_AFTER != "$SETS_BEFORE" ]]; then
	fail "kernel sets before [$(xargs <<<"$SETS_BEFORE")] and after [$(xargs <<<"$SETS_AFTER")] differ"
fi
# A helper that outlives its shell would later take a count for nobody (sem.sh's
# SEMCTL_PARENT closes the race between fork and the helper's PR_SET_PDEATHSIG).
if ((${#ORPHANS[@]})) && [[ ${CHAOS_ORPHANS_FAIL:-1} == 1 ]]; then
	fail "${#ORPHANS[@]} helpers outlived their shell by more than 1 s (pids ${!ORPHANS[*]})"
fi
if grep -q panicked "$DIR"/err.* 2>/dev/null; then
	fail "a helper panicked: $(grep -h panicked "$DIR"/err.* | head -3)"
fi

# ---- the summary ----
ELAPSED=$(awk -v a="$START" -v b="$STOPPED_AT" 'BEGIN { printf "%.0f", b - a }')
sigs="KILL=${SENT[KILL]:-0} TERM=${SENT[TERM]:-0} INT=${SENT[INT]:-0} STOP=${SENT[STOP]:-0}(+CONT)"
tg=''
for k in worker helper-run helper-hold helper-wait helper-post command other; do
	[[ -n ${TARGETS[$k]:-} ]] && tg+=" $k=${TARGETS[$k]}"
done
OTHER=''
if [[ -s $DIR/run.other ]]; then
	OTHER=$(awk '{ print $NF }' "$DIR/run.other" | sort -n | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep = "," }')
fi
echo "chaos: ${ELAPSED}s K=$K workers=${RUN_WORKERS}run+${WP_WORKERS}wp; signals $sigs;" \
	"targets$tg; respawns $RESPAWNS;" \
	"sem_run completions ext=$(bytes "$DIR/run.ok.ext") fn=$(bytes "$DIR/run.ok.fn")" \
	"other-status(rc:n)=${OTHER:-none}; s final $S_VAL/$K waiters $S_WAIT (max seen $MAX_S, $SAMPLES samples);" \
	"wait/post rounds=$(bytes "$DIR/wp.ok") waitfail=$WAITFAIL postfail=$POSTFAIL deaths-holding=$DEATHS_HELD deaths-in-wait=$DEATHS_WAITING" \
	"kill9-waits=$KILL9_WP_WAIT refills=$TOPUPS; s2 final $S2_VAL (bounds $((K2 + TOPUPS - MAYLOSE))..$((K2 + TOPUPS)), lost $LOST)" \
	"waiters $S2_WAIT; orphaned helpers (>1 s) ${#ORPHANS[@]}; settle ${SETTLE}s; kernel sets leaked: $([[ $SETS_AFTER == "$SETS_BEFORE" ]] && echo 0 || echo some);" \
	"${#FAILURES[@]} failures"
matrix=''
for k in worker helper-run helper-hold helper-wait helper-post command; do
	[[ -n ${TARGETS[$k]:-} ]] || continue
	matrix+=" $k"
	for sig in KILL TERM INT STOP; do
		matrix+=" ${sig}=${BOTH[$k:$sig]:-0}"
	done
	matrix+=";"
done
echo "chaos: signals by target:$matrix"
# What the workers said on stderr, for the record (a holder killed mid-run says so).
if compgen -G "$DIR/err.*" >/dev/null && [[ -n $(cat "$DIR"/err.*) ]]; then
	cat "$DIR"/err.* | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5 | sed 's/^/chaos: stderr: /'
fi
if [[ ${CHAOS_KEEP:-} == 1 ]]; then
	echo "chaos: logs kept in $DIR"
else
	rm -rf "$DIR"
fi
((${#FAILURES[@]} == 0))
