#!/usr/bin/env bash
# bench/run.sh: sem against the process-spawn floor, flock(1) and GNU parallel's sem.
#
#   bench/run.sh            the full run (make bench): writes docs/BENCH.md and
#                           docs/bench.svg; about 3-4 minutes
#   bench/run.sh --smoke    a quick check (make bench-smoke; also BENCH_QUICK=1): the
#                           benchmark runs and the ratios stay within generous bounds;
#                           writes nothing, needs neither GNU parallel nor gnuplot
#                           (nor redis-server: without it the Redis checks are skipped)
#
# Section 6 measures Redis names (redis:NAME) against the System V path, on a
# redis-server this script starts on a free loopback port (tests/redis/server.sh) and
# stops by pid on exit.
#
# This machine is noisy, so every figure comes from one run in which the contenders take
# turns (A, B, C, A, B, C, ...) rather than all of A, then all of B: a slow minute hurts
# every contender alike, and each ratio pairs a contender with the baseline measured in
# the same round. Each figure is a median with the min and max over the rounds.
#
# Environment: SEMCTL_HELPER (the helper to measure; default target/release's),
# BENCH_QUICK=1 (same as --smoke), TMPDIR.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME's decimal point, sort's order

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=${here%/*}
smoke=0
case ${1:-} in
--smoke) smoke=1 ;;
'') ;;
*)
	echo "usage: bench/run.sh [--smoke]" >&2
	exit 2
	;;
esac
if [[ ${BENCH_QUICK:-} == 1 ]]; then smoke=1; fi
invocation="bench/run.sh${1:+ $1}"

H=${SEMCTL_HELPER:-$root/target/release/semctl-helper}
if [[ ! -x $H ]]; then
	echo "bench: no helper at $H (run make build)" >&2
	exit 1
fi
# shellcheck source=sh/sem.sh
source "$root/sh/sem.sh"

die() {
	echo "bench: $*" >&2
	exit 1
}
say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Private scratch space; everything we start or create is undone on exit.

work=$(mktemp -d "${TMPDIR:-/tmp}/sem-bench.XXXXXX")
res=$work/res # one file per series: one number per line
mkdir -p "$res" "$work/home/.parallel"
: >"$work/home/.parallel/will-cite"
bg_pids=()
sem_names=()

cleanup() {
	local p n
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for n in "${sem_names[@]}"; do "$H" destroy -- "$n" 2>/dev/null || true; done
	if [[ -d $work/redis ]]; then "$root/tests/redis/server.sh" stop "$work/redis" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# new_sem NAME VALUE: create a semaphore that cleanup will destroy; sets sem_id to its
# kernel id, read from the record (see docs/DESIGN.md), for polling ipcs.
new_sem() {
	local rec
	sem_init "$1" "$2" || die "sem_init $1 failed"
	sem_names+=("$1")
	read -r rec <"$1"
	[[ $rec =~ \ id=([0-9]+) ]] || die "no id in the record of $1: $rec"
	sem_id=${BASH_REMATCH[1]}
}

# ncount ID: print how many processes the kernel has asleep on set ID (ipcs's ncount).
# Asking the kernel, not the helper under test, keeps the observer independent.
ncount() {
	local out line a c e
	out=$(ipcs -s -i "$1") || return 1
	while IFS= read -r line; do
		read -r a _ c _ e <<<"$line"
		if [[ $a == 0 && -n $e ]]; then
			echo "$c"
			return 0
		fi
	done <<<"$out"
	return 1
}

# wait_ncount ID N SECONDS: poll until N processes are asleep on ID.
wait_ncount() {
	local deadline=$((${EPOCHREALTIME/./} + $3 * 1000000)) n
	while :; do
		n=$(ncount "$1") || return 1
		((n >= $2)) && return 0
		((${EPOCHREALTIME/./} < deadline)) || return 1
		sleep 0.002
	done
}

# wait_flock_blocked INODE SECONDS: poll /proc/locks until a flock waiter is queued on
# INODE (the "->" lines are blocked requests).
wait_flock_blocked() {
	local deadline=$((${EPOCHREALTIME/./} + $2 * 1000000)) line
	while :; do
		while IFS= read -r line; do
			[[ $line == *'-> FLOCK'*":$1 "* ]] && return 0
		done </proc/locks
		((${EPOCHREALTIME/./} < deadline)) || return 1
		sleep 0.001
	done
}

# stats FILE: "median min max p99 n" of the numbers in FILE (p99: nearest rank).
stats() {
	if [[ ! -s $1 ]]; then
		echo "nan nan nan nan 0"
		return 0
	fi
	sort -g "$1" | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) { print "nan nan nan nan 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.99 * NR); if (r < 0.99 * NR) r++
			print m, v[1], v[NR], v[r], NR
		}'
}
median() { stats "$1" | cut -d' ' -f1; }
# p95 FILE: the 95th percentile (nearest rank) of the numbers in FILE.
p95() {
	[[ -s $1 ]] || {
		echo nan
		return 0
	}
	sort -g "$1" | awk '{ v[NR] = $1 } END { r = int(0.95 * NR); if (r < 0.95 * NR) r++; print v[r] }'
}
# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }
# fmt DIGITS X: X rounded, or "n/a".
fmt() { awk -v d="$1" -v x="$2" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else printf "%.*f\n", d, x }'; }

# ---------------------------------------------------------------------------------------
# What this helper offers: sem_run, post N and relax are newer than the rest.

probe=$work/probe
new_sem "$probe" 1
has_run=0 has_relax=0 has_postn=0
if declare -F sem_run >/dev/null && sem_run "$probe" true; then has_run=1; fi
if "$H" post -- "$probe" 2 2>/dev/null; then
	[[ $("$H" peek -- "$probe") == 3 ]] && has_postn=1
fi
if "$H" relax -- "$probe" >/dev/null 2>&1; then has_relax=1; fi
have_parallel=0 have_time=0 have_strace=0 have_python=0

# In the full run, install what the comparison needs from Debian's packages.
if ((!smoke)); then
	missing=()
	command -v parallel >/dev/null || missing+=(parallel)
	command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
	[[ -x /usr/bin/time ]] || missing+=(time)
	if ((${#missing[@]})); then
		if (($(id -u) == 0)); then
			say "installing: ${missing[*]}"
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
		else
			die "missing: ${missing[*]} (apt-get install ${missing[*]})"
		fi
	fi
	have_parallel=1 have_time=1
	command -v strace >/dev/null && have_strace=1
	command -v python3 >/dev/null && have_python=1
fi

# GNU parallel keeps its semaphores under $HOME/.parallel: give it a private HOME.
par() { HOME=$work/home parallel --will-cite "$@"; }

if ((smoke)); then
	rounds=3 iters=15 par_iters=0
	wake_samples=15 par_samples=0
	scale_rounds=1 scale_ns=(1 10 100) cpu_window=0.5
	cont_rounds=1 cont_ws=(1 4) cont_us=400000 cont_s=0.4
	start_iters=20
	r_rounds=3 r_iters=10 r_wake=10 r_many_rounds=1
else
	rounds=9 iters=50 par_iters=2
	wake_samples=200 par_samples=30
	scale_rounds=3 scale_ns=(1 10 100 1000) cpu_window=2
	cont_rounds=3 cont_ws=(1 2 4 8) cont_us=1000000 cont_s=1
	start_iters=80
	r_rounds=9 r_iters=50 r_wake=50 r_many_rounds=5
fi
r_many=100

# The Redis server for section 6, started now: a fresh server grants nothing for one lease
# (SEM_LEASE: the default 15 s in the full run, 1 s in the smoke run), which passes while
# sections 1-5 run.
have_redis=0 redis_version=''
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	have_redis=1
elif ((!smoke)); then
	die "redis-server and redis-cli are missing (make deps-redis installs them)"
fi
if ((have_redis)); then
	rport=$("$root/tests/redis/server.sh" start "$work/redis") || die "cannot start a redis-server"
	export SEM_REDIS_URL=redis://127.0.0.1:$rport
	if ((smoke)); then export SEM_LEASE=1; else unset SEM_LEASE; fi
	redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
fi

run_start=$(date '+%Y-%m-%d %H:%M:%S %z')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_run0=${EPOCHREALTIME/./}

# ---------------------------------------------------------------------------------------
# 1. Per-call cost: one acquire/release pair, from a bash loop.

lock=$work/lock
: >"$lock"
pair=$work/pair
new_sem "$pair" 0
exec {lockfd}>"$lock"

op_floor() { local i; for ((i = 0; i < $1; i++)); do /bin/true; /bin/true; done; }
op_lib() { local i; for ((i = 0; i < $1; i++)); do sem_post "$pair"; sem_wait "$pair"; done; }
# sem.sh's helper path, which the public functions take without the builtin (SEM_BUILTIN=0).
op_libh() { local i; for ((i = 0; i < $1; i++)); do _sem_h_post "$pair"; _sem_h_wait "$pair"; done; }
op_helper() { local i; for ((i = 0; i < $1; i++)); do "$H" post "$pair"; "$H" wait "$pair"; done; }
op_flock2() { local i; for ((i = 0; i < $1; i++)); do flock -x "$lockfd"; flock -u "$lockfd"; done; }
op_flock1() { local i; for ((i = 0; i < $1; i++)); do flock "$lock" /bin/true; done; }
op_run() { local i; for ((i = 0; i < $1; i++)); do sem_run "$pair" /bin/true; done; }
op_parallel() { local i; for ((i = 0; i < $1; i++)); do par --semaphore --fg --id "bench-$$" -j1 true; done; }

# timed FN N: microseconds per iteration of FN.
timed() {
	local t0=${EPOCHREALTIME/./} t1
	"$1" "$2"
	t1=${EPOCHREALTIME/./}
	calc "($t1 - $t0) / $2"
}

call_ops=(floor lib helper flock2 flock1)
# With the builtin loaded, sem.sh's functions run in the shell; the helper path then
# competes as a contender of its own.
has_builtin=0
if [[ $(declare -f sem_post) == *'builtin __sem'* ]]; then
	has_builtin=1
	call_ops+=(libh)
fi
((has_run)) && call_ops+=(run)
((have_parallel)) && call_ops+=(parallel)
say "1/7 per-call cost: ${call_ops[*]} x $rounds rounds"
if ((has_run)); then sem_post "$pair"; fi # sem_run needs a free slot
for ((r = 0; r < rounds; r++)); do
	# Rotate the order each round, so that no contender always runs first.
	n=${#call_ops[@]}
	for ((k = 0; k < n; k++)); do
		op=${call_ops[(k + r) % n]}
		it=$iters
		[[ $op == parallel ]] && it=$par_iters
		us=$(timed "op_$op" "$it")
		echo "$us" >>"$res/call.$op"
		echo "$r $us" >>"$res/callr.$op"
	done
done
if ((has_run)); then sem_wait "$pair"; fi

# ratios OPFILE BASEFILE: per round, OP's time / the baseline's time in the same round.
ratios() { awk 'NR == FNR { b[$1] = $2; next } ($1 in b) { print $2 / b[$1] }' "$2" "$1"; }
# paired_ratio OP: the median of those ratios against the floor.
paired_ratio() {
	ratios "$res/callr.$1" "$res/callr.floor" >"$res/ratio.$1"
	median "$res/ratio.$1"
}
# best_ratio OP: the smallest one (the smoke check's "best of a few rounds").
best_ratio() { ratios "$res/callr.$1" "$res/callr.floor" | sort -g | head -n1; }

# ---------------------------------------------------------------------------------------
# 2. Wake-up latency: a waiter blocked in the kernel, then a post.

wname=$work/wake
new_sem "$wname" 0
wid=$sem_id
stamp=$work/wake.t
lock_ino=$(stat -c %i "$lock")

wake_sem() {
	local wpid t0 t1 tw
	rm -f "$stamp"
	(
		sem_wait "$wname"
		printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
	) &
	wpid=$!
	wait_ncount "$wid" 1 10 || die "the sem waiter never blocked"
	t0=${EPOCHREALTIME/./}
	sem_post "$wname"
	t1=${EPOCHREALTIME/./}
	wait "$wpid" || die "the sem waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - t0))" >>"$res/wake.sem.spawn"
	echo "$((tw - t1))" >>"$res/wake.sem.exit"
}

wake_flock() {
	local wpid t0 t1 tw
	rm -f "$stamp"
	flock -x "$lockfd"
	(
		exec {lockfd}>&- # the waiter must not share the holder's lock
		exec {w}>"$lock"
		flock -x "$w"
		printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
	) &
	wpid=$!
	wait_flock_blocked "$lock_ino" 10 || die "the flock waiter never blocked"
	t0=${EPOCHREALTIME/./}
	flock -u "$lockfd"
	t1=${EPOCHREALTIME/./}
	wait "$wpid" || die "the flock waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - t0))" >>"$res/wake.flock.spawn"
	echo "$((tw - t1))" >>"$res/wake.flock.exit"
}

# The same hand-offs released by a resident process (bench/poster.py), which reads the
# clock just before its semop(2) or flock(2): the wake-up alone, without the post's spawn.
poster() {
	echo "$*" >&"${POSTER[1]}"
	read -r poster_t <&"${POSTER[0]}" || die "the resident poster died"
}

wake_sem_direct() {
	local wpid tw
	rm -f "$stamp"
	(
		sem_wait "$wname"
		printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
	) &
	wpid=$!
	wait_ncount "$wid" 1 10 || die "the sem waiter never blocked"
	poster post "$wid"
	wait "$wpid" || die "the sem waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - poster_t))" >>"$res/wake.sem.direct"
}

# The raw helper as the waiter: the like-for-like match of a blocked `flock -x`, without
# sem.sh's function layer on the waiter's side.
wake_helper_direct() {
	local wpid tw
	rm -f "$stamp"
	(
		"$H" wait "$wname"
		printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
	) &
	wpid=$!
	wait_ncount "$wid" 1 10 || die "the helper waiter never blocked"
	poster post "$wid"
	wait "$wpid" || die "the helper waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - poster_t))" >>"$res/wake.helper.direct"
}

wake_flock_direct() {
	local wpid tw
	rm -f "$stamp"
	poster lock
	(
		exec {lockfd}>&-
		exec {w}>"$lock"
		flock -x "$w"
		printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
	) &
	wpid=$!
	wait_flock_blocked "$lock_ino" 10 || die "the flock waiter never blocked"
	poster unlock
	wait "$wpid" || die "the flock waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - poster_t))" >>"$res/wake.flock.direct"
}

# GNU parallel's sem has no kernel queue: a waiter polls, sleeping a random time up to a
# bound that grows 10% a try, to 1 s. The holder runs `sleep` under the semaphore; the
# release is the end of that command (a builtin kill, so no spawn on the poster's side).
cat >"$work/hold.sh" <<EOF
echo \$\$ >'$work/hold.pid'
exec sleep 600
EOF
cat >"$work/pwake.sh" <<EOF
printf '%s\n' "\${EPOCHREALTIME/./}" >'$stamp'
EOF
wake_parallel() {
	local hpid wpid t0 tw i
	rm -f "$stamp" "$work/hold.pid"
	par --semaphore --fg --id "wake-$$" -j1 bash "$work/hold.sh" &
	hpid=$!
	bg_pids+=("$hpid")
	for ((i = 0; i < 2000; i++)); do
		[[ -s $work/hold.pid ]] && break
		sleep 0.005
	done
	[[ -s $work/hold.pid ]] || die "the parallel holder never started"
	par --semaphore --fg --id "wake-$$" -j1 bash "$work/pwake.sh" &
	wpid=$!
	bg_pids+=("$wpid")
	sleep 0.5 # the waiter is polling by now (perl starts in ~0.1 s here)
	t0=${EPOCHREALTIME/./}
	kill "$(<"$work/hold.pid")"
	wait "$hpid" || true
	wait "$wpid" || die "the parallel waiter failed"
	read -r tw <"$stamp"
	echo "$((tw - t0))" >>"$res/wake.parallel.spawn"
	unset 'bg_pids[-1]' 'bg_pids[-1]'
}

wake_kinds=(sem flock)
if ((have_python)); then
	coproc POSTER { exec python3 "$here/poster.py" "$lock"; }
	bg_pids+=("$POSTER_PID")
	wake_kinds+=(sem_direct helper_direct flock_direct)
fi
say "2/7 wake-up latency: ${wake_kinds[*]} x $wake_samples$( ((par_samples)) && echo ", parallel x $par_samples")"
for ((s = 0; s < wake_samples; s++)); do
	n=${#wake_kinds[@]}
	for ((k = 0; k < n; k++)); do "wake_${wake_kinds[(k + s) % n]}"; done
	if ((par_samples && s % (wake_samples / par_samples) == 0 && s / (wake_samples / par_samples) < par_samples)); then
		wake_parallel
	fi
done

# ---------------------------------------------------------------------------------------
# 3. Scale: N waiters asleep on one semaphore; the CPU they use; the time to release them.

# cpu_ticks PID...: the sum of utime + stime (clock ticks) of the processes.
cpu_ticks() {
	local p line total=0
	local -a f
	for p; do
		read -r line <"/proc/$p/stat" || continue
		read -ra f <<<"${line##*) }" # fields from 3 (state) on; comm may hold spaces
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}
# rss_kb PID: resident set size in kB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

sname=$work/scale
new_sem "$sname" 0
sid=$sem_id
tick=$(getconf CLK_TCK)
if ((has_relax)); then
	release_how="semctl-helper relax NAME"
elif ((has_postn)); then
	release_how="semctl-helper post NAME N"
else
	release_how="N x semctl-helper post NAME (no relax or post N yet)"
fi
release() {
	local i
	if ((has_relax)); then
		"$H" relax "$sname" >/dev/null
	elif ((has_postn)); then
		"$H" post "$sname" "$1"
	else
		for ((i = 0; i < $1; i++)); do "$H" post "$sname"; done
	fi
}
uproc=$(ulimit -u)

# scale_one N [shell]: N helper waiters; with "shell", N bash shells waiting in the
# builtin (results under the key shN).
scale_one() {
	local n=$1 i c0 c1 t0 t1 t2 pids=() key=$1
	if [[ $uproc != unlimited ]] && ((uproc < n + 200)); then
		say "  skipping $n waiters: ulimit -u is $uproc"
		return 0
	fi
	for ((i = 0; i < n; i++)); do
		if [[ ${2-} == shell ]]; then
			# shellcheck disable=SC2016 # the script is the child bash's
			bash --norc --noprofile -c 'source "$1"; sem_wait "$2"' _ "$root/sh/sem.sh" "$sname" &
		else
			"$H" wait "$sname" &
		fi
		pids+=($!)
	done
	[[ ${2-} == shell ]] && key=sh$n
	bg_pids+=("${pids[@]}")
	wait_ncount "$sid" "$n" 60 || die "$n waiters never all blocked"
	c0=$(cpu_ticks "${pids[@]}")
	sleep "$cpu_window"
	c1=$(cpu_ticks "${pids[@]}")
	# CPU over the window, in ms per second of waiting, for all N together
	calc "($c1 - $c0) * 1000 / $tick / $cpu_window" >>"$res/scale.cpu.$key"
	[[ -s $res/scale.rss.$key ]] || rss_kb "${pids[0]}" >"$res/scale.rss.$key"
	t0=${EPOCHREALTIME/./}
	if [[ ${2-} == shell ]]; then
		# Shells are released by a post of N: between two 20 ms slices a shell is out of
		# the kernel's queue for a moment, and relax, which posts what it counts there,
		# would leave it for the next release (as a waiter arriving just after).
		"$H" post "$sname" "$n"
	else
		release "$n"
	fi
	t1=${EPOCHREALTIME/./}
	wait "${pids[@]}" || die "a waiter failed"
	t2=${EPOCHREALTIME/./}
	bg_pids=("${bg_pids[@]:0:${#bg_pids[@]}-n}")
	calc "($t2 - $t0) / 1000" >>"$res/scale.release.$key"
	calc "($t1 - $t0) / 1000" >>"$res/scale.call.$key"
	[[ $(ncount "$sid") == 0 && $(sem_peek "$sname") == 0 ]] || die "after releasing $n: waiters or counts left"
}

say "3/7 scale: ${scale_ns[*]} waiters x $scale_rounds rounds (release: $release_how)"
for ((r = 0; r < scale_rounds; r++)); do
	n=${#scale_ns[@]}
	for ((k = 0; k < n; k++)); do scale_one "${scale_ns[(k + r) % n]}"; done
	# Shells waiting in the builtin, up to 100 (a bash each).
	if ((has_builtin)); then
		for m in "${scale_ns[@]}"; do
			((m <= 100)) && scale_one "$m" shell
		done
	fi
done

# ---------------------------------------------------------------------------------------
# 4. Contention: W workers hammer a 1-slot semaphore (or one lock) for cont_s seconds.

cname=$work/cont
new_sem "$cname" 1

# worker KIND START_US END_US OUT: loop until END_US, then write "count finish_us".
worker() {
	local kind=$1 start=$2 end=$3 out=$4 n=0 fd now
	exec {fd}>"$lock"
	now=${EPOCHREALTIME/./}
	((start > now)) && sleep "$(calc "($start - $now) / 1000000")"
	case $kind in
	lib) while ((${EPOCHREALTIME/./} < end)); do sem_wait "$cname"; sem_post "$cname"; n=$((n + 1)); done ;;
	run) while ((${EPOCHREALTIME/./} < end)); do sem_run "$cname" /bin/true; n=$((n + 1)); done ;;
	flock1) while ((${EPOCHREALTIME/./} < end)); do flock "$lock" /bin/true; n=$((n + 1)); done ;;
	flock2) while ((${EPOCHREALTIME/./} < end)); do flock -x "$fd"; flock -u "$fd"; n=$((n + 1)); done ;;
	esac
	echo "$n ${EPOCHREALTIME/./}" >"$out"
}

contend() {
	local kind=$1 w=$2 i start end pids=() total=0 last=0 c f
	start=$((${EPOCHREALTIME/./} + 300000 + w * 20000)) # time for every worker to start
	end=$((start + cont_us))
	for ((i = 0; i < w; i++)); do
		worker "$kind" "$start" "$end" "$work/cont.$i" &
		pids+=($!)
	done
	bg_pids+=("${pids[@]}")
	wait "${pids[@]}" || die "a $kind worker failed"
	bg_pids=("${bg_pids[@]:0:${#bg_pids[@]}-w}")
	for ((i = 0; i < w; i++)); do
		read -r c f <"$work/cont.$i"
		total=$((total + c))
		((f > last)) && last=$f
	done
	((total > 0)) || die "$w $kind workers acquired nothing"
	calc "$total * 1000000 / ($last - $start)" >>"$res/cont.$kind.$w"
}

cont_ops=(lib flock2 flock1)
((has_run)) && cont_ops+=(run)
say "4/7 contention: ${cont_ops[*]} with ${cont_ws[*]} workers x $cont_rounds rounds"
for ((r = 0; r < cont_rounds; r++)); do
	for w in "${cont_ws[@]}"; do
		n=${#cont_ops[@]}
		for ((k = 0; k < n; k++)); do contend "${cont_ops[(k + r) % n]}" "$w"; done
	done
done
[[ $(sem_peek "$cname") == 1 ]] || die "contention: the 1-slot semaphore lost or gained a count"

# ---------------------------------------------------------------------------------------
# 5. Helper start-up: bare start (--version), a real operation (peek), against /bin/true.

op_true() { local i; for ((i = 0; i < $1; i++)); do /bin/true; done; }
op_version() { local i; for ((i = 0; i < $1; i++)); do "$H" --version >/dev/null; done; }
op_peek() { local i; for ((i = 0; i < $1; i++)); do "$H" peek "$pair" >/dev/null; done; }
op_flockv() { local i; for ((i = 0; i < $1; i++)); do flock --version >/dev/null; done; }
# A script's start: bash, and bash sourcing sem.sh with the builtin and without.
op_bash() { local i; for ((i = 0; i < $1; i++)); do bash --norc --noprofile -c :; done; }
# shellcheck disable=SC2016 # the scripts are the child bash's
op_srcb() { local i; for ((i = 0; i < $1; i++)); do bash --norc --noprofile -c 'source "$1"' _ "$root/sh/sem.sh"; done; }
# shellcheck disable=SC2016
op_src0() { local i; for ((i = 0; i < $1; i++)); do SEM_BUILTIN=0 bash --norc --noprofile -c 'source "$1"' _ "$root/sh/sem.sh"; done; }
start_ops=(true version peek flockv bash srcb src0)
say "5/7 start-up: ${start_ops[*]} x $rounds rounds"
for ((r = 0; r < rounds; r++)); do
	n=${#start_ops[@]}
	for ((k = 0; k < n; k++)); do
		op=${start_ops[(k + r) % n]}
		us=$(timed "op_$op" "$start_iters")
		echo "$r $us" >>"$res/startr.$op"
		echo "$us" >>"$res/start.$op"
	done
done
# redis_ratio OP BASE: the median over section 6's rounds of OP's time / BASE's.
redis_ratio() {
	ratios "$res/rcallr.$1" "$res/rcallr.$2" >"$res/rratio.$1.$2"
	median "$res/rratio.$1.$2"
}
start_ratio() {
	ratios "$res/startr.$1" "$res/startr.true" >"$res/sratio.$1"
	median "$res/sratio.$1"
}
if ((have_time)); then
	for ((i = 0; i < 5; i++)); do
		/usr/bin/time -f %M -o "$work/t" /bin/true && cat "$work/t" >>"$res/mem.true"
		/usr/bin/time -f %M -o "$work/t" "$H" --version >/dev/null && cat "$work/t" >>"$res/mem.version"
		/usr/bin/time -f %M -o "$work/t" "$H" peek "$pair" >/dev/null && cat "$work/t" >>"$res/mem.peek"
		/usr/bin/time -f %M -o "$work/t" flock --version >/dev/null && cat "$work/t" >>"$res/mem.flockv"
		/usr/bin/time -f %M -o "$work/t" bash --norc --noprofile -c : && cat "$work/t" >>"$res/mem.bash"
		# shellcheck disable=SC2016
		/usr/bin/time -f %M -o "$work/t" bash --norc --noprofile -c 'source "$1"' _ "$root/sh/sem.sh" && cat "$work/t" >>"$res/mem.srcb"
		# shellcheck disable=SC2016
		SEM_BUILTIN=0 /usr/bin/time -f %M -o "$work/t" bash --norc --noprofile -c 'source "$1"' _ "$root/sh/sem.sh" && cat "$work/t" >>"$res/mem.src0"
	done
fi

# ---------------------------------------------------------------------------------------
# 6. Redis: the same three measures on redis:NAME, next to the System V path in the same
# rounds. The observer of a Redis waiter is redis-cli reading the name's queue (LLEN),
# not the helper under test.

# redis_llen NAME: the length of redis:NAME's queue of waiters.
redis_llen() { redis-cli -p "$rport" --raw LLEN "sem:{$1}:queue"; }

# wait_llen NAME N SECONDS: poll until N waiters are queued on redis:NAME.
wait_llen() {
	local deadline=$((${EPOCHREALTIME/./} + $3 * 1000000)) n
	while :; do
		n=$(redis_llen "$1") || return 1
		((n >= $2)) && return 0
		((${EPOCHREALTIME/./} < deadline)) || return 1
		sleep 0.002
	done
}

# new_redis BASE VALUE: create redis:BASE-PID (cleanup destroys it); sets rname.
new_redis() {
	rname=redis:$1-$$
	sem_init "$rname" "$2" || die "sem_init $rname failed"
	sem_names+=("$rname")
}

if ((have_redis)); then
	# The server's quiet start: poll until a trywait is granted (one lease, at most).
	new_redis probe 1
	rprobe=$rname
	for ((i = 0; i < 3000; i++)); do
		sem_trywait "$rprobe" 2>/dev/null && break
		sleep 0.01
	done
	sem_post "$rprobe" || die "the Redis server granted nothing within 30 s"

	# 6a. Per-call cost.
	new_redis pair 1
	rpair=$rname
	spair=$work/spair
	new_sem "$spair" 1
	op_rping() { local i; for ((i = 0; i < $1; i++)); do redis-cli -p "$rport" PING >/dev/null; redis-cli -p "$rport" PING >/dev/null; done; }
	op_rlib() { local i; for ((i = 0; i < $1; i++)); do sem_trywait "$rpair"; sem_post "$rpair"; done; }
	op_rhelper() { local i; for ((i = 0; i < $1; i++)); do "$H" trywait "$rpair"; "$H" post "$rpair"; done; }
	op_rrun() { local i; for ((i = 0; i < $1; i++)); do sem_run "$rpair" /bin/true; done; }
	# System V through sem.sh's helper path (as with SEM_BUILTIN=0): like Redis, one
	# spawn an operation. Section 7 has the builtin.
	op_slib() { local i; for ((i = 0; i < $1; i++)); do _sem_h_trywait "$spair"; _sem_h_post "$spair"; done; }
	op_shelper() { local i; for ((i = 0; i < $1; i++)); do "$H" trywait "$spair"; "$H" post "$spair"; done; }
	op_srun() { local i; for ((i = 0; i < $1; i++)); do sem_run "$spair" /bin/true; done; }
	r_ops=(floor rping rlib rhelper slib shelper)
	((has_run)) && r_ops+=(rrun srun)
	say "6/7 Redis: per-call ${r_ops[*]} x $r_rounds rounds; wake-up x $r_wake; $r_many waiters x $r_many_rounds"
	for ((r = 0; r < r_rounds; r++)); do
		n=${#r_ops[@]}
		for ((k = 0; k < n; k++)); do
			op=${r_ops[(k + r) % n]}
			us=$(timed "op_$op" "$r_iters")
			echo "$us" >>"$res/rcall.$op"
			echo "$r $us" >>"$res/rcallr.$op"
		done
	done
	[[ $(sem_peek "$rpair") == 1 && $(sem_peek "$spair") == 1 ]] || die "Redis per-call: a pair lost or gained a count"

	# 6b. Wake-up: a waiter asleep in sem_wait, then a spawned sem_post.
	new_redis wake 0
	rwake=$rname
	swake=$work/swake
	new_sem "$swake" 0
	swid=$sem_id
	# wake_one KIND: one sample; KIND redis or sysv.
	wake_one() {
		local kind=$1 name wpid t0 t1 tw
		rm -f "$stamp"
		if [[ $kind == redis ]]; then name=$rwake; else name=$swake; fi
		(
			sem_wait "$name"
			printf '%s\n' "${EPOCHREALTIME/./}" >"$stamp"
		) &
		wpid=$!
		if [[ $kind == redis ]]; then
			wait_llen "${rwake#redis:}" 1 10 || die "the Redis waiter never queued"
		else
			wait_ncount "$swid" 1 10 || die "the System V waiter never blocked"
		fi
		t0=${EPOCHREALTIME/./}
		sem_post "$name"
		t1=${EPOCHREALTIME/./}
		wait "$wpid" || die "the $kind waiter failed"
		read -r tw <"$stamp"
		echo "$((tw - t0))" >>"$res/rwake.$kind.spawn"
		echo "$((tw - t1))" >>"$res/rwake.$kind.exit"
	}
	for ((s = 0; s < r_wake; s++)); do
		if ((s % 2)); then wake_one redis; wake_one sysv; else wake_one sysv; wake_one redis; fi
	done

	# 6c. r_many waiters (semctl-helper wait) released by one `post NAME r_many`.
	new_redis many 0
	rmany=$rname
	smany=$work/smany
	new_sem "$smany" 0
	smid=$sem_id
	many_one() {
		local kind=$1 name i t0 t1 t2 pids=()
		if [[ $kind == redis ]]; then name=$rmany; else name=$smany; fi
		for ((i = 0; i < r_many; i++)); do
			"$H" wait "$name" &
			pids+=($!)
		done
		bg_pids+=("${pids[@]}")
		if [[ $kind == redis ]]; then
			wait_llen "${rmany#redis:}" "$r_many" 60 || die "$r_many Redis waiters never all queued"
		else
			wait_ncount "$smid" "$r_many" 60 || die "$r_many System V waiters never all blocked"
		fi
		t0=${EPOCHREALTIME/./}
		"$H" post "$name" "$r_many" || die "post $name $r_many failed"
		t1=${EPOCHREALTIME/./}
		wait "${pids[@]}" || die "a $kind waiter failed"
		t2=${EPOCHREALTIME/./}
		bg_pids=("${bg_pids[@]:0:${#bg_pids[@]}-r_many}")
		calc "($t2 - $t0) / 1000" >>"$res/rmany.$kind"
		calc "($t1 - $t0) / 1000" >>"$res/rmany.$kind.call"
		[[ $(sem_peek "$name") == 0 ]] || die "after releasing $r_many $kind waiters: counts left"
	}
	for ((r = 0; r < r_many_rounds; r++)); do
		if ((r % 2)); then many_one redis; many_one sysv; else many_one sysv; many_one redis; fi
	done
	[[ $(redis_llen "${rmany#redis:}") == 0 ]] || die "Redis waiters left queued"
fi

# ---------------------------------------------------------------------------------------
# 7. In the shell: one operation through sem.sh's public functions with the builtin, from
# a bash loop, against an empty function call and a spawn of /bin/true, in one run.

inner=$work/inner
new_sem "$inner" 0
f6() { :; }
op6_loop() { local i; for ((i = 0; i < $1; i++)); do :; done; }
op6_func() { local i; for ((i = 0; i < $1; i++)); do f6; done; }
# Two operations an iteration (the value stays 0): timed divides by the operations.
op6_sem() { local i; for ((i = 0; i < $1; i += 2)); do sem_post "$inner"; sem_trywait "$inner"; done; }
op6_raw() { local i; for ((i = 0; i < $1; i += 2)); do builtin __sem post "$inner"; builtin __sem trywait "$inner"; done; }
# A function of the same shape as sem.sh's, around the builtin :, with the same argument.
f6a() { builtin : post "$@" || :; }
op6_funca() { local i; for ((i = 0; i < $1; i++)); do f6a "$inner"; done; }
op6_true() { local i; for ((i = 0; i < $1; i++)); do /bin/true; done; }
if ((has_builtin)); then
	shell_ops=(loop func funca sem raw true)
	if ((smoke)); then shell_iters=2000 true_iters=20; else shell_iters=20000 true_iters=300; fi
	say "7/7 in the shell: ${shell_ops[*]} x $rounds rounds"
	for ((r = 0; r < rounds; r++)); do
		n=${#shell_ops[@]}
		for ((k = 0; k < n; k++)); do
			op=${shell_ops[(k + r) % n]}
			it=$shell_iters
			[[ $op == true ]] && it=$true_iters
			us=$(timed "op6_$op" "$it")
			echo "$us" >>"$res/shell.$op"
			echo "$r $us" >>"$res/shellr.$op"
		done
	done
	[[ $(sem_peek "$inner") == 0 ]] || die "in the shell: the semaphore lost or gained a count"
fi

t_run1=${EPOCHREALTIME/./}
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(calc "($t_run1 - $t_run0) / 1000000")

# ---------------------------------------------------------------------------------------
# The smoke check: only generous bounds, best of the rounds, so load alone can't fail it.

ms() { calc "$1 / 1000"; }
r_lib=$(paired_ratio lib)
r_helper=$(paired_ratio helper)
wake_med=$(ms "$(median "$res/wake.sem.spawn")")
if ((smoke)); then
	fail=0
	best_lib=$(best_ratio lib)
	best_helper=$(best_ratio helper)
	best_sc=$(sort -g "$res/scale.release.${scale_ns[-1]}" | head -n1)
	printf 'sem_post+sem_wait pair: %s x the spawn floor (best of %d rounds; bound 3)\n' "$(fmt 2 "$best_lib")" "$rounds"
	printf 'helper post+wait pair:  %s x the spawn floor (best of %d rounds; bound 3)\n' "$(fmt 2 "$best_helper")" "$rounds"
	printf 'wake-up, post start to waiter return: median %s ms (bound 50)\n' "$(fmt 2 "$wake_med")"
	printf 'release %d waiters: %s ms (bound 2000)\n' "${scale_ns[-1]}" "$(fmt 1 "$best_sc")"
	awk -v x="$best_lib" 'BEGIN { exit !(x < 3) }' || { say "FAIL: sem pair above 3x the floor"; fail=1; }
	awk -v x="$best_helper" 'BEGIN { exit !(x < 3) }' || { say "FAIL: helper pair above 3x the floor"; fail=1; }
	awk -v x="$wake_med" 'BEGIN { exit !(x < 50) }' || { say "FAIL: median wake-up above 50 ms"; fail=1; }
	awk -v x="$best_sc" 'BEGIN { exit !(x < 2000) }' || { say "FAIL: release above 2 s"; fail=1; }
	if ((have_redis)); then
		best_rlib=$(ratios "$res/rcallr.rlib" "$res/rcallr.floor" | sort -g | head -n1)
		rwake_med=$(ms "$(median "$res/rwake.redis.spawn")")
		best_rmany=$(sort -g "$res/rmany.redis" | head -n1)
		printf 'Redis sem_trywait+sem_post pair: %s x the spawn floor (best of %d rounds; bound 5)\n' "$(fmt 2 "$best_rlib")" "$r_rounds"
		printf 'Redis wake-up, post start to waiter return: median %s ms (bound 50)\n' "$(fmt 2 "$rwake_med")"
		printf 'Redis: release %d waiters: %s ms (bound 3000)\n' "$r_many" "$(fmt 1 "$best_rmany")"
		awk -v x="$best_rlib" 'BEGIN { exit !(x < 5) }' || { say "FAIL: Redis pair above 5x the floor"; fail=1; }
		awk -v x="$rwake_med" 'BEGIN { exit !(x < 50) }' || { say "FAIL: Redis median wake-up above 50 ms"; fail=1; }
		awk -v x="$best_rmany" 'BEGIN { exit !(x < 3000) }' || { say "FAIL: Redis release above 3 s"; fail=1; }
	else
		echo "Redis: skipped (no redis-server; make deps-redis installs it)"
	fi
	printf 'elapsed: %s s\n' "$(fmt 1 "$elapsed")"
	if ((has_builtin)); then
		best_shell=$(sort -g "$res/shell.sem" | head -n1)
		printf 'sem.sh op with the builtin: %s us (best of %d rounds; bound 100)\n' "$(fmt 1 "$best_shell")" "$rounds"
		awk -v x="$best_shell" 'BEGIN { exit !(x < 100) }' || { say "FAIL: a sem.sh op with the builtin above 100 us"; fail=1; }
	fi
	((fail == 0)) && echo "bench-smoke: ok"
	exit "$fail"
fi

# ---------------------------------------------------------------------------------------
# The report: docs/BENCH.md and docs/bench.svg.

mkdir -p "$root/docs"
out=$root/docs/BENCH.md.tmp
plot=$work/plot
mkdir -p "$plot"

# row_ms FILE: "median | min | max" in ms, from microseconds.
row_ms() {
	local m lo hi p n
	read -r m lo hi p n < <(stats "$1")
	printf '%s | %s | %s' "$(fmt 2 "$(ms "$m")")" "$(fmt 2 "$(ms "$lo")")" "$(fmt 2 "$(ms "$hi")")"
}
# Backquotes in these strings are Markdown code spans, not command substitutions.
# shellcheck disable=SC2016
label() {
	case $1 in
	floor) echo '`/bin/true; /bin/true` (the floor: two spawns)' ;;
	lib) if ((has_builtin)); then echo '`sem_post X; sem_wait X` (sem.sh, in the shell: the builtin)'; else echo '`sem_post X; sem_wait X` (sem.sh)'; fi ;;
	libh) echo '`sem_post X; sem_wait X` (sem.sh with SEM_BUILTIN=0: the helper)' ;;
	helper) echo '`semctl-helper post X; semctl-helper wait X`' ;;
	flock2) echo '`flock -x 9; flock -u 9` (two spawns)' ;;
	flock1) echo '`flock FILE /bin/true` (one flock, which runs /bin/true)' ;;
	run) echo '`sem_run X /bin/true` (one helper, which becomes /bin/true)' ;;
	parallel) echo '`parallel --semaphore --fg --id X -j1 true`' ;;
	true) echo '`/bin/true`' ;;
	version) echo '`semctl-helper --version`' ;;
	peek) echo '`semctl-helper peek X` (start-up + one operation)' ;;
	flockv) echo '`flock --version`' ;;
	rping) echo '`redis-cli -p PORT PING` twice (two spawns, two round trips)' ;;
	rlib) echo '`sem_trywait redis:X; sem_post redis:X` (sem.sh)' ;;
	rhelper) echo '`semctl-helper trywait redis:X; semctl-helper post redis:X`' ;;
	rrun) echo '`sem_run redis:X /bin/true` (held under a lease)' ;;
	slib) echo '`sem_trywait X; sem_post X` (System V, sem.sh with SEM_BUILTIN=0: the helper)' ;;
	shelper) echo '`semctl-helper trywait X; semctl-helper post X` (System V)' ;;
	srun) echo '`sem_run X /bin/true` (System V)' ;;
	bash) echo '`bash -c :` (a script'"'"'s start)' ;;
	srcb) echo '`bash -c "source sem.sh"` (loads the builtin)' ;;
	src0) echo '`SEM_BUILTIN=0 bash -c "source sem.sh"`' ;;
	esac
}
short() {
	case $1 in
	floor) echo "2x /bin/true" ;; lib) echo "sem pair (sem.sh)" ;; libh) echo "sem pair (SEM_BUILTIN=0)" ;; helper) echo "helper pair" ;;
	flock2) echo "flock -x/-u" ;; flock1) echo "flock FILE /bin/true" ;; run) echo "sem_run X /bin/true" ;;
	parallel) echo "parallel sem" ;; sem) echo "sem" ;; flock) echo "flock" ;;
	esac
}
# shell_row OP LABEL: one row of section 6: median, min, max in µs per operation, and the
# ratio to an empty function call in the same round.
shell_row() {
	local m lo hi r
	read -r m lo hi _ _ < <(stats "$res/shell.$1")
	ratios "$res/shellr.$1" "$res/shellr.func" >"$res/shratio.$1"
	r=$(median "$res/shratio.$1")
	printf '| %s | %s | %s | %s | %s |\n' "$2" "$(fmt 2 "$m")" "$(fmt 2 "$lo")" "$(fmt 2 "$hi")" "$(fmt 2 "$r")"
}
# shell_syscalls: system calls per sem.sh operation with the builtin (strace -c: 1000
# iterations of the pair less none), one "NAME PER-OP" line per call.
shell_syscalls() {
	local n
	for n in 0 1000; do
		# shellcheck disable=SC2016 # the script is bash's, with its own arguments
		strace -f -c -o "$work/strace.$n" bash --norc --noprofile -c 'source "$1"; for ((i = 0; i < $2; i++)); do sem_post "$3"; sem_trywait "$3"; done' \
			_ "$root/sh/sem.sh" "$n" "$inner" >/dev/null
	done
	awk 'FNR == 1 { f++ } $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { c[f, $NF] += $4; names[$NF] = 1 }
		END { for (k in names) { d = (c[2, k] - c[1, k]) / 2000; if (d >= 0.005) printf "%s %.2f\n", k, d } }' \
		"$work/strace.0" "$work/strace.1000" | sort -k2,2gr
}
# Backquotes in these strings are Markdown code spans, not command substitutions.
# shellcheck disable=SC2016
shell_section() {
	if ((!has_builtin)); then
		echo "The builtin was not loaded in this run (SEM_BUILTIN=0, or no target/release/sem-builtin.so)."
		return 0
	fi
	local m_sem m_raw m_func m_loop r_sem r_true calls
	m_sem=$(median "$res/shell.sem")
	m_raw=$(median "$res/shell.raw")
	m_func=$(median "$res/shell.func")
	m_loop=$(median "$res/shell.loop")
	ratios "$res/shellr.sem" "$res/shellr.func" >"$res/shratio.sem"
	r_sem=$(median "$res/shratio.sem")
	ratios "$res/shellr.true" "$res/shellr.sem" >"$res/shratio.true"
	r_true=$(median "$res/shratio.true")
	cat <<EOF
One operation from a bash loop: \`sem_post X; sem_trywait X\` through sem.sh's public
functions with the builtin loaded (the value stays 0), $shell_iters operations a round,
$rounds rounds, against the same loop calling an empty function \`f(){ :; }\`, the bare
loop, the builtin called directly (\`builtin __sem post X\`, no function), a function of
sem.sh's shape around the \`:\` builtin, and a spawn of
\`/bin/true\` ($true_iters a round). Microseconds per operation (per iteration for the
others), loop included.

| per operation | median µs | min | max | ratio to \`f(){ :; }\` |
|---|---|---|---|---|
$(shell_row loop 'the empty loop: `for ((...)); do :; done`')
$(shell_row func 'an empty function call `f`')
$(shell_row funca '`g X`: a function of sem.sh'"'"'s shape around `builtin :`')
$(shell_row sem '`sem_post X` / `sem_trywait X` (sem.sh, the builtin)')
$(shell_row raw '`builtin __sem post X` / `trywait` (no sem.sh function)')
$(shell_row true 'a spawn of `/bin/true`')

A sem.sh operation is $(fmt 2 "$m_sem") µs: $(fmt 2 "$r_sem")× an empty function call, and a
spawn of \`/bin/true\` costs $(fmt 0 "$r_true") times as much. Where the time goes: the loop
itself $(fmt 2 "$m_loop") µs; the builtin (bash's call, the name's resolution, the cache's
two checks and the operation) $(fmt 2 "$(calc "$m_raw - $m_loop")") µs; sem.sh's function
around it $(fmt 2 "$(calc "$m_sem - $m_raw")") µs (an empty function call costs
$(fmt 2 "$(calc "$m_func - $m_loop")") µs above the loop).
EOF
	if ((have_strace)); then
		calls=$(shell_syscalls | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
		cat <<EOF

System calls per sem.sh operation with the builtin (\`strace -f -c\`, 1000 iterations of
the pair less none): $calls. That is the cache's revalidation (\`newfstatat\` of the name,
\`semctl\` IPC_STAT of the set) and the operation (\`semtimedop\`); no process is started.
EOF
	fi
}
# strace_row LABEL COMMAND...: one row of system call counts for COMMAND.
strace_row() {
	local label=$1
	shift
	strace -f -c -o "$work/strace" "$@" >/dev/null
	awk -v c="$label" '
		$1 ~ /^[0-9.]+$/ && $NF ~ /^(mmap|mprotect|munmap)$/ { mm += $4 }
		$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { d++ }
		$NF == "total" { t = $4 }
		END { printf "| %s | %d | %d | %d |\n", c, t, mm, d }' "$work/strace"
}
# Backquotes in these strings are Markdown code spans, not command substitutions.
# shellcheck disable=SC2016
strace_table() {
	strace_row '`/bin/true`' /bin/true
	strace_row '`semctl-helper --version`' "$H" --version
	strace_row '`semctl-helper post X`' "$H" post "$pair"
	strace_row '`semctl-helper wait X` (a count is there)' "$H" wait "$pair"
}
met() {
	if [[ $1 == *nan* ]]; then
		echo "n/a"
		return 0
	fi
	if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**not met**"; fi
}

helper_version=$("$H" --version 2>/dev/null || echo "?")
rust_version=$(rustc --version 2>/dev/null || echo "rustc ?")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git -C "$root" status --porcelain -- src sh Cargo.toml Cargo.lock 2>/dev/null) ]]; then
	commit="$commit (with uncommitted changes in src/ or sh/)"
fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

# Figures needed by both the text and the targets.
med_floor=$(median "$res/call.floor")
med_lib=$(median "$res/call.lib")
med_flock2=$(median "$res/call.flock2")
read -r ws_m _ _ ws_p _ < <(stats "$res/wake.sem.spawn")
read -r we_m _ _ we_p _ < <(stats "$res/wake.sem.exit")
read -r wf_m _ _ wf_p _ < <(stats "$res/wake.flock.spawn")
read -r wfe_m _ _ wfe_p _ < <(stats "$res/wake.flock.exit")
read -r wp_m _ _ wp_p _ < <(stats "$res/wake.parallel.spawn")
read -r wd_m _ _ wd_p _ < <(stats "$res/wake.sem.direct")
read -r wfd_m _ _ wfd_p _ < <(stats "$res/wake.flock.direct")
read -r whd_m _ _ whd_p _ < <(stats "$res/wake.helper.direct")
med_flock1=$(median "$res/call.flock1")
med_run=$(median "$res/call.run")
big=${scale_ns[-1]}
rel_big=$(median "$res/scale.release.$big")
cpu_big=$(stats "$res/scale.cpu.$big" | cut -d' ' -f3) # the worst window

{
	cat <<EOF
# sem benchmarks

Generated by \`make bench\` (\`$invocation\`) on $run_start, in $(fmt 0 "$elapsed") s.
Every figure below comes from this one run, with the contenders taking turns
(A, B, C, A, B, C, ...; the order rotates each round) so that the machine's noise falls on
all of them alike. Figures are medians, with the min and max over the rounds; a ratio is
the median over rounds of (contender / baseline measured in the same round).

| machine | |
|---|---|
| CPU | $cpu, $(nproc) cores (nproc) |
| kernel | $(uname -sr) |
| load average at start / end | $load_start / $load_end |
| limits | ulimit -u $uproc; kernel.sem $(tr -s '\t ' ' ' </proc/sys/kernel/sem) |
| sem | $helper_version, commit $commit, $rust_version |
| tools | bash $BASH_VERSION; $(flock --version); $(parallel --version | head -n1); $(gnuplot --version); redis-server $redis_version |

![sem benchmarks](bench.svg)

## 1. Per-call cost

One acquire/release pair from a bash loop, $iters pairs a round, $rounds rounds
($par_iters a round for GNU parallel: it is a perl program). The floor is what any
external command pays: bash spawning \`/bin/true\` twice.

| pair | median ms | min | max | ratio to the floor |
|---|---|---|---|---|
EOF
	for op in "${call_ops[@]}"; do
		r=1
		[[ $op != floor ]] && r=$(paired_ratio "$op")
		printf '| %s | %s | %s |\n' "$(label "$op")" "$(row_ms "$res/call.$op")" "$(fmt 2 "$r")"
	done
	cat <<EOF

Like for like: **\`sem_post\` + \`sem_wait\` against \`flock -x 9\` + \`flock -u 9\`**: both
are two spawns, and the script runs its own code between them, in its own shell. \`flock
FILE true\` is one flock process that forks the command; its match is \`sem_run X
COMMAND\`$( ((has_run)) || echo " (not in this build of sem yet)"), and GNU parallel's
\`--semaphore --fg\` works the same way.

## 2. Wake-up latency

A waiter blocks; then a post releases it, and the waiter's shell records
\`\$EPOCHREALTIME\` the moment its command returns. $wake_samples samples of each sem and
flock kind, taken in turns; $par_samples for GNU parallel.

- **sem**: the waiter runs \`sem_wait X\` in a subshell; the poster polls the kernel's
  waiter count (\`ipcs -s -i ID\`, ncount) until the waiter sleeps, then posts.
- **flock**: the poster holds an exclusive lock on the file; the waiter runs \`flock -x\`
  on its own open of it; the poster polls \`/proc/locks\` until the waiter is queued (a
  \`->\` line), then unlocks.
- **GNU parallel**: a holder runs \`sleep\` under \`parallel --semaphore --fg\`; the
  waiter's command (\`bash\` recording the time) runs under the same id once it gets
  the slot. The poster kills the holder's \`sleep\` (a builtin: no spawn) 0.5 s after
  the waiter started. Its waiters poll, sleeping a random time whose bound grows 10% a
  try up to 1 s, so the longer a waiter has waited, the later it notices.

Three clocks:

- **post spawned, from its start**: the poster's shell reads the clock, then runs
  \`sem_post X\` or \`flock -u 9\`. Includes the spawn of the post, about one floor.
- **post spawned, from its return**: the clock read just after the poster's shell has
  reaped the post. Both sides then pay the same tail (a process exits, its shell reaps
  it), so this approximates the post's own system call to the waiter's return; it is
  below zero when the woken waiter gets the CPU before the poster's shell does.
- **resident poster, from its system call**: \`bench/poster.py\`, a process that stays
  up, reads the clock just before its \`semop(2)\` (+1 on the set sem made) or its
  \`flock(2)\` unlock. This is the wake-up alone: the kernel wakes the waiter, which
  returns, exits and is reaped by its shell.

| hand-off | post spawned: from start, median ms | p99 | from return, median ms | p99 | resident poster: median ms | p99 |
|---|---|---|---|---|---|---|
| sem: post → \`sem_wait\` returns | $(fmt 2 "$(ms "$ws_m")") | $(fmt 2 "$(ms "$ws_p")") | $(fmt 2 "$(ms "$we_m")") | $(fmt 2 "$(ms "$we_p")") | $(fmt 2 "$(ms "$wd_m")") | $(fmt 2 "$(ms "$wd_p")") |
| sem, raw helper: post → \`semctl-helper wait X\` returns | - | - | - | - | $(fmt 2 "$(ms "$whd_m")") | $(fmt 2 "$(ms "$whd_p")") |
| flock: unlock → blocked \`flock -x\` returns | $(fmt 2 "$(ms "$wf_m")") | $(fmt 2 "$(ms "$wf_p")") | $(fmt 2 "$(ms "$wfe_m")") | $(fmt 2 "$(ms "$wfe_p")") | $(fmt 2 "$(ms "$wfd_m")") | $(fmt 2 "$(ms "$wfd_p")") |
| GNU parallel: holder's command ends → waiter's command starts | - | - | - | - | $(fmt 1 "$(ms "$wp_m")") | $(fmt 1 "$(ms "$wp_p")") |

## 3. Many waiters

N \`semctl-helper wait X\` processes asleep on one semaphore ($scale_rounds rounds), and
up to 100 bash shells each waiting in \`sem_wait X\` with the builtin (they wake every
20 ms to read bash's signal state, see DESIGN.md; they are released by \`semctl-helper
post X N\`). CPU is
the sum of utime + stime of all N from /proc/PID/stat over a ${cpu_window} s window (clock
ticks of $((1000 / tick)) ms). Release is \`$release_how\`, timed from just before the
call to the moment the last waiter was reaped; every waiter must exit 0 and leave the
count at 0.

| waiters | CPU while waiting, all N, ms per s (max) | RSS of one waiter | release call, median ms | all released and reaped: median ms | min | max |
|---|---|---|---|---|---|---|
EOF
	for key in "${scale_ns[@]}" "${scale_ns[@]/#/sh}"; do
		[[ -s $res/scale.release.$key ]] || continue
		read -r m lo hi _ _ < <(stats "$res/scale.release.$key")
		who=${key#sh}
		[[ $key == sh* ]] && who="$who (bash shells, the builtin)"
		printf '| %s | %s | %s kB | %s | %s | %s | %s |\n' "$who" \
			"$(fmt 1 "$(stats "$res/scale.cpu.$key" | cut -d' ' -f3)")" "$(cat "$res/scale.rss.$key")" \
			"$(fmt 1 "$(median "$res/scale.call.$key")")" "$(fmt 1 "$m")" "$(fmt 1 "$lo")" "$(fmt 1 "$hi")"
	done
	cat <<EOF

## 4. Contention

W workers (background shells) each loop over acquire/release of one 1-slot semaphore
(or one lock file) for $cont_s s; the figure is acquisitions per second of all W
together ($cont_rounds rounds; median, min, max). With $(nproc) cores, more than $(nproc)
workers mostly measure how fast the machine spawns processes.

| workers | $(for op in "${cont_ops[@]}"; do printf '%s | ' "$(short "$op")"; done | sed 's/ | $//') |
|---|$(for _ in "${cont_ops[@]}"; do printf -- '---|'; done)
EOF
	for w in "${cont_ws[@]}"; do
		printf '| %d |' "$w"
		for op in "${cont_ops[@]}"; do
			read -r m lo hi _ _ < <(stats "$res/cont.$op.$w")
			printf ' %s (%s-%s) |' "$(fmt 0 "$m")" "$(fmt 0 "$lo")" "$(fmt 0 "$hi")"
		done
		echo
	done
	cat <<EOF

sem pair: \`sem_wait X; sem_post X\`; flock -x/-u: \`flock -x FD; flock -u FD\`, each
worker on its own open of the file; flock FILE true and sem_run X true: one process per
acquisition that runs \`true\` while it holds the slot.

## 5. Start-up: the helper, and a script sourcing sem.sh

Per spawn from a bash loop ($start_iters a round, $rounds rounds); peak RSS from
\`/usr/bin/time -f %M\` (median of 5). The binary is $(stat -c %s "$H") bytes
($(ldd "$H" 2>/dev/null | grep -c '=>') shared libraries). The last three rows are what a
script pays once: starting bash, and sourcing sem.sh with the builtin (the .so is
$(stat -c %s "$root/target/release/sem-builtin.so" 2>/dev/null || echo "?") bytes) and without it.

| command | median ms | min | max | ratio to /bin/true | peak RSS |
|---|---|---|---|---|---|
EOF
	for op in "${start_ops[@]}"; do
		r=1
		[[ $op != true ]] && r=$(start_ratio "$op")
		printf '| %s | %s | %s | %s kB |\n' "$(label "$op")" "$(row_ms "$res/start.$op")" "$(fmt 2 "$r")" "$(median "$res/mem.$op")"
	done
	if ((have_strace)); then
		cat <<EOF

System calls of one process (\`strace -f -c\`; a bash that execs it is not counted):

| command | system calls | of them mmap/mprotect/munmap | distinct calls |
|---|---|---|---|
EOF
		strace_table
	fi
	if ((have_redis)); then
		cat <<EOF2

## 6. Redis

Redis names (\`redis:NAME\`) on a redis-server $redis_version that this run started on a
loopback port (\`tests/redis/server.sh start\`; no persistence; \`SEM_LEASE\` unset, so the
default 15 s), next to the System V path (a file name), in the same rounds and turns.

Per-call cost: one acquire/release pair from a bash loop, $r_iters pairs a round, $r_rounds
rounds. Each Redis operation is one helper spawn, one TCP connection and one \`EVALSHA\` of
the kind's Lua script; the like-for-like baseline is two \`redis-cli -p PORT PING\`, two
spawns that each connect and make one round trip.

| pair | median ms | min | max | ratio to the floor | ratio to two PINGs |
|---|---|---|---|---|---|
EOF2
		for op in "${r_ops[@]}"; do
			r=1 rp=1
			[[ $op != floor ]] && r=$(redis_ratio "$op" floor)
			[[ $op != rping ]] && rp=$(redis_ratio "$op" rping)
			printf '| %s | %s | %s | %s |\n' "$(label "$op")" "$(row_ms "$res/rcall.$op")" "$(fmt 2 "$r")" "$(fmt 2 "$rp")"
		done
		cat <<EOF2

Redis against System V, paired by round: the sem.sh pair costs $(fmt 2 "$(redis_ratio rlib slib)")×, the helper pair
$(fmt 2 "$(redis_ratio rhelper shelper)")×$( ((has_run)) && echo ", \`sem_run X /bin/true\` $(fmt 2 "$(redis_ratio rrun srun)")×") the System V one.
EOF2
		cat <<EOF2

Wake-up: a waiter runs \`sem_wait X\` in a subshell; the poster waits until it is queued
(for Redis, \`redis-cli LLEN\` of the name's queue; for System V, the kernel's ncount),
then runs \`sem_post X\`; the waiter's shell records \`\$EPOCHREALTIME\` when sem_wait
returns. $r_wake samples of each, in turns. The clocks are those of section 2: from the
start of the spawned post (includes its spawn and connection), and from its return. A
Redis waiter sleeps in a blocking pop on a list of its own, which the post's script
pushes to: no polling.

| hand-off | from start, median ms | p95 | from return, median ms | p95 |
|---|---|---|---|---|
| Redis: \`sem_post redis:X\` → \`sem_wait redis:X\` returns | $(fmt 2 "$(ms "$(median "$res/rwake.redis.spawn")")") | $(fmt 2 "$(ms "$(p95 "$res/rwake.redis.spawn")")") | $(fmt 2 "$(ms "$(median "$res/rwake.redis.exit")")") | $(fmt 2 "$(ms "$(p95 "$res/rwake.redis.exit")")") |
| System V: \`sem_post X\` → \`sem_wait X\` returns | $(fmt 2 "$(ms "$(median "$res/rwake.sysv.spawn")")") | $(fmt 2 "$(ms "$(p95 "$res/rwake.sysv.spawn")")") | $(fmt 2 "$(ms "$(median "$res/rwake.sysv.exit")")") | $(fmt 2 "$(ms "$(p95 "$res/rwake.sysv.exit")")") |

Many waiters: $r_many \`semctl-helper wait X\` processes queued (Redis: until \`LLEN\` says
$r_many) or asleep (System V: ncount), then one \`semctl-helper post X $r_many\`, timed
from just before the post to the moment the last waiter was reaped; every waiter must exit
0 and leave the value at 0. $r_many_rounds rounds.

| $r_many waiters on | post call, median ms | all released and reaped: median ms | min | max |
|---|---|---|---|---|
EOF2
		for kind in redis sysv; do
			read -r m lo hi _ _ < <(stats "$res/rmany.$kind")
			printf '| %s | %s | %s | %s | %s |\n' "$([[ $kind == redis ]] && echo Redis || echo 'System V')" \
				"$(fmt 1 "$(median "$res/rmany.$kind.call")")" "$(fmt 1 "$m")" "$(fmt 1 "$lo")" "$(fmt 1 "$hi")"
		done
	fi
	cat <<EOF

## 7. In the shell: the builtin

$(shell_section)

## Targets

| target | result | |
|---|---|---|
$(if ((has_builtin)); then
		m=$(median "$res/shell.sem")
		ratios "$res/shellr.sem" "$res/shellr.func" >"$res/shratio.sem"
		rf=$(median "$res/shratio.sem")
		ratios "$res/shellr.true" "$res/shellr.sem" >"$res/shratio.true"
		rt=$(median "$res/shratio.true")
		echo "| with the builtin, a sem.sh op ≤ 10 µs | $(fmt 2 "$m") µs (\`sem_post\`/\`sem_trywait\` from a loop) | $(met "$m <= 10") |"
		echo "| with the builtin, a sem.sh op ≤ 2× an empty function call | $(fmt 2 "$rf")× \`f(){ :; }\` | $(met "$rf <= 2") |"
		echo "| with the builtin, 100× under a spawn | a spawn of \`/bin/true\` is $(fmt 0 "$rt")× a sem.sh op | $(met "$rt >= 100") |"
	fi)
| a sem op pair ≤ 1.2× the spawn floor | sem.sh pair $(fmt 2 "$r_lib")×, helper pair $(fmt 2 "$r_helper")× ($(fmt 2 "$(ms "$med_lib")") ms vs $(fmt 2 "$(ms "$med_floor")") ms) | $(met "$r_lib <= 1.2") (sem.sh), $(met "$r_helper <= 1.2") (helper) |
| wake-up median ≤ 1 ms | $(fmt 2 "$(ms "$wd_m")") ms from a resident poster's semop (p99 $(fmt 2 "$(ms "$wd_p")")); $(fmt 2 "$(ms "$ws_m")") ms from the start of a spawned \`sem_post\`, which includes its spawn | $(met "$wd_m <= 1000") (wake-up), $(met "$ws_m <= 1000") (with the post's spawn) |
| $big waiters released in ≤ 200 ms | median $(fmt 1 "$rel_big") ms ($release_how) | $(met "$rel_big <= 200") |
| near-zero CPU while $big wait | at most $(fmt 1 "$cpu_big") ms of CPU per second, all $big together | $(met "$cpu_big <= 10") |
| fastest of the tools, like for like: the pair | \`sem_post\`+\`sem_wait\` $(fmt 2 "$(ms "$med_lib")") ms vs \`flock -x\`+\`flock -u\` $(fmt 2 "$(ms "$med_flock2")") ms | $(met "$med_lib <= $med_flock2") |
| fastest, like for like: hold while a command runs | $(if ((has_run)); then echo "\`sem_run X true\` $(fmt 2 "$(ms "$med_run")") ms vs \`flock FILE true\` $(fmt 2 "$(ms "$med_flock1")") ms vs GNU parallel $(fmt 1 "$(ms "$(median "$res/call.parallel")")") ms | $(met "$med_run <= $med_flock1")"; else echo "no \`sem_run\` in this build | -"; fi) |
| fastest, like for like: wake-up | resident poster: sem.sh $(fmt 2 "$(ms "$wd_m")") ms, raw helper $(fmt 2 "$(ms "$whd_m")") ms vs flock $(fmt 2 "$(ms "$wfd_m")") ms vs GNU parallel $(fmt 1 "$(ms "$wp_m")") ms; spawned post: sem $(fmt 2 "$(ms "$ws_m")") vs flock $(fmt 2 "$(ms "$wf_m")") ms | $(met "$wd_m <= $wfd_m && $wd_m <= $wp_m") (sem.sh, resident), $(met "$whd_m <= $wfd_m") (raw helper, resident), $(met "$ws_m <= $wf_m") (spawned) |
EOF
} >"$out"

# The picture: four panels, from the same results.
for op in "${call_ops[@]}"; do
	read -r m lo hi _ _ < <(stats "$res/call.$op")
	printf '"%s" %s %s %s\n' "$(short "$op")" "$(ms "$m")" "$(ms "$lo")" "$(ms "$hi")"
done >"$plot/calls.dat"
for t in sem.spawn flock.spawn sem.direct flock.direct parallel.spawn; do
	[[ -s $res/wake.$t ]] || : >"$res/wake.$t"
	sort -g "$res/wake.$t" | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i] / 1000, i / NR }' >"$plot/wake.$t.dat"
done
for n in "${scale_ns[@]}"; do
	[[ -s $res/scale.release.$n ]] || continue
	echo "$n $(stats "$res/scale.release.$n" | cut -d' ' -f1-3)"
done >"$plot/scale.dat"
for op in "${cont_ops[@]}"; do
	{
		printf '"%s" m lo hi\n' "$(short "$op")" # the series' title, for columnheader
		for w in "${cont_ws[@]}"; do echo "$w $(stats "$res/cont.$op.$w" | cut -d' ' -f1-3)"; done
	} >"$plot/cont.$op.dat"
done
gnuplot -e "dir='$plot'; out='$root/docs/bench.svg'; conts='${cont_ops[*]}'" "$here/plot.gp"
mv "$out" "$root/docs/BENCH.md"
say "wrote docs/BENCH.md and docs/bench.svg in $(fmt 0 "$elapsed") s"
