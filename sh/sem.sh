# shellcheck shell=bash
#
# sem.sh: counting semaphores for bash scripts.
#
#   source sem.sh
#   sem_init [--group G] [--force] NAME VALUE [MODE]
#                                 create NAME with VALUE (0..32767), MODE octal (0600)
#   sem_post  NAME [N]            add N (default 1), waking as many waiters
#   sem_wait  NAME [TIMEOUT]      take one, sleeping until one is posted (TIMEOUT seconds)
#   sem_trywait NAME              take one if one is there now
#   sem_peek  NAME                print the value
#   sem_destroy NAME              remove NAME (its owner only), waking its waiters
#   sem_run [-w S] [-E C] [-n N] [--init V [--mode M] [--group G]] NAME COMMAND [ARG...]
#                                 hold one count (N) of NAME exactly while COMMAND runs
#   sem_hold [-n N] [--init V ...] NAME [TIMEOUT]
#                                 hold one count (N) of NAME until this shell ends
#   sem_release NAME              give back now what this shell holds of NAME
#   sem_relax NAME                release every process blocked on NAME now
#   sem_status NAME               describe NAME for people
#   sem_follow NAME               print a line at every change of NAME, until ^C
#
# Every function but sem_run returns 0 or 1; sem_run returns COMMAND's status. A NAME is
# a path (a System V semaphore set; a relative NAME is under $HOME) or posix:/NAME (a
# POSIX named semaphore, shared with programs that call sem_open).
# The work is done by semctl-helper: waiters sleep in the kernel and wake within
# microseconds of a post.
#
# Environment (read at each call, never set by this file):
#   SEMCTL_HELPER  path of the semctl-helper binary to use. Otherwise the helper is
#                  looked for beside this file (the `make install` layout), then in the
#                  repository's target/release, then on PATH.
#   SEM_VERBOSE    when 1, post, wait, trywait and peek print the helper's one-line
#                  reason for a failure on stderr (they are silent otherwise).
#   SEM_POSIX_TRUST  uids or user names (comma-separated) whose posix: semaphores may be
#                  used besides your own and root's (see the README).
#   SEM_BUILTIN    read once, when this file is sourced: 0 never loads the builtin (below);
#                  a path containing / names the sem-builtin.so to load.
#
# The builtin: when bash allows it (bash 5.2 or later, not restricted), sourcing loads
# sem-builtin.so (found as the helper is: beside this file, then in the repository's
# target/release) as the private builtin __sem, and sem_post, sem_wait, sem_trywait,
# sem_peek and sem_relax on System V names then run in this shell's own process, over a
# hundred times faster, with the same results. Anything else, and any failure to load it,
# uses the helper.
#
# Sourcing defines only the sem_* functions and private _sem_* helpers (and may load the
# __sem builtin): no variables, no shell options, no traps. It is safe to source twice,
# and works in a caller that runs `set -euo pipefail`.

if [ -z "${BASH_VERSION:-}" ]; then
	echo "sem.sh: this library needs bash" >&2
	return 1
fi

# Record this file's directory, resolved now (the caller may cd later), and, when this
# file was sourced through a symlink, the directory of the real file too. They live in a
# function rather than variables, so that sourcing leaks no variables.
_sem_locate() {
	local _sem_src=${BASH_SOURCE[0]} _sem_dir _sem_real='' _sem_all _sem_b _sem_q _sem_pat=
	case $_sem_src in
	*/*) _sem_dir=${_sem_src%/*} ;;
	*) _sem_dir=. ;;
	esac
	_sem_dir=$(CDPATH='' builtin cd -P -- "${_sem_dir:-/}" 2>/dev/null && builtin pwd -P) || _sem_dir=''
	if [[ -L $_sem_src ]]; then
		_sem_real=$(command readlink -f -- "$_sem_src" 2>/dev/null) || _sem_real=''
		_sem_real=${_sem_real%/*}
	fi
	eval "_sem_libdir() { _sem_d=$(builtin printf '%q' "${_sem_real:-$_sem_dir}") _sem_d2=$(builtin printf '%q' "$_sem_dir"); }"
	# _sem_builtin NAME: whether NAME is one of this bash's builtins, which sem_run must
	# run in the calling shell. Listed once here, so that sem_run needs no subshell.
	_sem_all=$(compgen -b)
	while IFS= read -r _sem_b; do
		builtin printf -v _sem_q '%q' "$_sem_b"
		_sem_pat+="${_sem_pat:+|}$_sem_q"
	done <<<"$_sem_all"
	eval "_sem_builtin() { case \$1 in ${_sem_pat:-_sem_none_}) return 0 ;; esac; return 1; }"
}
_sem_locate
unset -f _sem_locate

# _sem_load: load the builtin (see the top of this file) if allowed, found, and speaking
# protocol version 1; silently, changing nothing of the caller's. Returns 1 otherwise,
# having left no builtin of ours half-loaded.
_sem_load() {
	local _sem_d='' _sem_d2='' _sem_p _sem_so=''
	if [[ ${SEM_BUILTIN-} == 0 ]] || ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 2))); then
		return 1
	fi
	# rbash refuses enable -f (and would say so).
	if shopt -q restricted_shell; then
		return 1
	fi
	# Sourced again: the builtin may be loaded already.
	if builtin __sem version 1 2>/dev/null; then
		return 0
	fi
	if [[ ${SEM_BUILTIN-} == */* ]]; then
		_sem_so=$SEM_BUILTIN
	else
		_sem_libdir
		for _sem_p in "$_sem_d/sem-builtin.so" "$_sem_d2/sem-builtin.so" "$_sem_d/../target/release/sem-builtin.so"; do
			# As for the helper: an unresolved directory is empty; never try /sem-builtin.so.
			if [[ $_sem_p != /sem-builtin.so && $_sem_p != /../* && $_sem_p == /* && -f $_sem_p ]]; then
				_sem_so=$_sem_p
				break
			fi
		done
	fi
	if [[ -z $_sem_so ]]; then
		return 1
	fi
	# A builtin of another version, loaded by another copy of sem.sh, gives way.
	builtin enable -d __sem 2>/dev/null
	if ! builtin enable -f "$_sem_so" __sem 2>/dev/null; then
		return 1
	fi
	if builtin __sem version 1 2>/dev/null; then
		return 0
	fi
	builtin enable -d __sem 2>/dev/null
	return 1
}

# _sem_helper: set the caller's local _sem_h to the helper's path. Returns 1 if none.
# Every call pays for this, so once _sem_lookup has found the helper beside this file it
# redefines _sem_helper to try that path first (a function, not a variable: sourcing
# leaks no variables).
_sem_helper() {
	if [[ -n ${SEMCTL_HELPER:-} ]]; then
		_sem_h=$SEMCTL_HELPER
		return 0
	fi
	_sem_lookup
}

# _sem_lookup: the full search, for _sem_helper.
_sem_lookup() {
	local _sem_d='' _sem_d2='' _sem_rest _sem_p _sem_q
	_sem_libdir
	# Beside this file (through a symlink: beside the real file, then beside the link),
	# then in the repository's target/release, then on PATH.
	for _sem_p in "$_sem_d/semctl-helper" "$_sem_d2/semctl-helper" "$_sem_d/../target/release/semctl-helper"; do
		# A directory that could not be resolved is empty: skip, never try /semctl-helper.
		if [[ $_sem_p == /semctl-helper || $_sem_p == /../* || $_sem_p != /* ]]; then
			continue
		fi
		if [[ -f $_sem_p && -x $_sem_p ]]; then
			_sem_h=$_sem_p
			builtin printf -v _sem_q '%q' "$_sem_p"
			eval "_sem_helper() {
				if [[ -n \${SEMCTL_HELPER:-} ]]; then
					_sem_h=\$SEMCTL_HELPER
					return 0
				fi
				_sem_h=$_sem_q
				if [[ -f \$_sem_h && -x \$_sem_h ]]; then
					return 0
				fi
				_sem_lookup
			}"
			return 0
		fi
	done
	_sem_h=''
	# PATH, searched by hand: no subshell, and no word splitting or globbing that the
	# caller's IFS or options could change.
	_sem_rest=${PATH:-}:
	while [[ -n $_sem_rest ]]; do
		_sem_p=${_sem_rest%%:*}
		_sem_rest=${_sem_rest#*:}
		if [[ -n $_sem_p && -f $_sem_p/semctl-helper && -x $_sem_p/semctl-helper ]]; then
			_sem_h=$_sem_p/semctl-helper
			return 0
		fi
	done
	return 1
}

# _sem_call QUIET ARGS...: run the helper with ARGS. With QUIET=1 its stderr is
# discarded unless SEM_VERBOSE=1. Returns the helper's status (1 if it can't be found).
# The braces with their own 2>/dev/null catch the line bash prints when a command dies of
# a signal ("Terminated"), which would otherwise break the promised silence; the
# helper's own stderr goes through fd 9 to the caller's stderr where it is wanted.
_sem_call() {
	local _sem_quiet=$1 _sem_h='' _sem_rc=0 _sem_fd=''
	shift
	if [[ $_sem_quiet == 1 && ${SEM_VERBOSE:-} != 1 ]]; then
		if ! _sem_helper; then
			return 1
		fi
		# Only a wait needs to know its caller (SEMCTL_PARENT, see the README); the
		# temporary environment costs every other call a little.
		if [[ $1 == wait || $1 == release ]]; then
			{ SEMCTL_PARENT=$BASHPID command "$_sem_h" "$@"; } 2>/dev/null
		else
			{ command "$_sem_h" "$@"; } 2>/dev/null
		fi
		return
	fi
	if ! _sem_helper; then
		builtin printf '%s\n' "sem.sh: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
		return 1
	fi
	_sem_errfd
	if [[ $1 == wait || $1 == release ]]; then
		{ SEMCTL_PARENT=$BASHPID command "$_sem_h" "$@" 2>&"$_sem_fd" {_sem_fd}>&-; } 2>/dev/null || _sem_rc=$?
	else
		{ command "$_sem_h" "$@" 2>&"$_sem_fd" {_sem_fd}>&-; } 2>/dev/null || _sem_rc=$?
	fi
	exec {_sem_fd}>&-
	if ((_sem_rc > 128)); then
		builtin printf 'semctl-helper: killed by signal %d\n' "$((_sem_rc - 128))" >&2
	fi
	return "$_sem_rc"
}

# _sem_usage QUIET TEXT: report a wrong number of arguments. Returns 0, so that a caller
# running `set -e` doesn't stop here; the public function returns 1 after it.
_sem_usage() {
	if [[ $1 != 1 || ${SEM_VERBOSE:-} == 1 ]]; then
		builtin printf 'usage: %s\n' "$2" >&2
	fi
	return 0
}

# sem_init [--group GROUP] [--force] NAME VALUE [MODE]
#   Create semaphore NAME with counter VALUE (decimal digits, 0..32767). MODE is the
#   kernel set's octal permissions, default 0600 (0660 lets the group use it).
#   Options, before NAME: --group GROUP (-g) gives the set and its file that group (a
#   name or gid; one of yours unless you are root); --force replaces your own record
#   made in another IPC namespace. `--` ends the options.
#   Returns: 0 on success; 1 on any failure, leaving no file and no kernel set.
#   Stdout:  nothing.
#   Stderr:  one line saying why, on failure.
sem_init() {
	local -a _sem_opts=()
	# An option is one only while NAME and VALUE still follow it, so that the names a
	# plain `sem_init NAME VALUE` always took (`sem_init -g 1`, `sem_init --bogus 1`)
	# keep working: the toolbox contract has no options, and a name may start with -.
	while (($# > 2)); do
		case $1 in
		--force) _sem_opts+=(--force) ;;
		--group | -g)
			if (($# < 4)); then
				break
			fi
			_sem_opts+=(--group "$2")
			shift
			;;
		--group=*) _sem_opts+=(--group "${1#--group=}") ;;
		--)
			shift
			break
			;;
		*) break ;;
		esac
		shift
	done
	if [[ ${1-} == -- ]] && (($# > 2)); then
		shift
	fi
	if (($# < 2 || $# > 3)); then
		_sem_usage 0 "sem_init [--group GROUP] [--force] [--] NAME VALUE [MODE]"
		return 1
	fi
	if _sem_call 0 init "${_sem_opts[@]}" -- "$@"; then
		return 0
	fi
	return 1
}

# sem_post NAME [N]
#   Add N (1..32767, default 1) to NAME's counter in one step, waking up to N waiters.
#   Returns: 0 on success; 1 on failure (no such semaphore, past 32767 (nothing is
#            added), no permission, a bad N).
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
_sem_h_post() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# < 1 || $# > 2)); then
		_sem_usage 1 "sem_post NAME [N]"
		return 1
	fi
	if _sem_call 1 post -- "$@"; then
		return 0
	fi
	return 1
}

# sem_wait NAME [TIMEOUT]
#   Take one count of NAME, sleeping in the kernel until one is posted. TIMEOUT is in
#   seconds and may be fractional; omitted or negative waits forever; 0 doesn't wait.
#   Returns: 0 once it has taken a count; 1 on timeout or any error (also when NAME is
#            destroyed while waiting).
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
_sem_h_wait() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# < 1 || $# > 2)); then
		_sem_usage 1 "sem_wait NAME [TIMEOUT]"
		return 1
	fi
	if _sem_call 1 wait -- "$@"; then
		return 0
	fi
	return 1
}

# sem_trywait NAME
#   Take one count of NAME if one is available now; never waits.
#   Returns: 0 if it took a count; 1 otherwise.
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
_sem_h_trywait() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 1 "sem_trywait NAME"
		return 1
	fi
	if _sem_call 1 trywait -- "$1"; then
		return 0
	fi
	return 1
}

# sem_peek NAME
#   Returns: 0 after printing the counter; 1 on failure.
#   Stdout:  the counter and a newline on success; nothing on failure.
#   Stderr:  nothing (the reason, with SEM_VERBOSE=1).
_sem_h_peek() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 1 "sem_peek NAME"
		return 1
	fi
	if _sem_call 1 peek -- "$1"; then
		return 0
	fi
	return 1
}

# sem_destroy NAME
#   Remove NAME, its file and its kernel set, if the caller's uid owns it. Processes
#   blocked in sem_wait on it return 1 at once. A stale name is just removed.
#   Returns: 0 on success; 1 on failure.
#   Stdout:  nothing.
#   Stderr:  one line saying why, on failure.
sem_destroy() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 0 "sem_destroy NAME"
		return 1
	fi
	if _sem_call 0 destroy -- "$1"; then
		return 0
	fi
	return 1
}

# sem_relax NAME
#   Release every process blocked in sem_wait on NAME at this moment, as if posted once
#   for each; later waiters still block (msem's "relax").
#   Returns: 0 on success (also when nobody waits); 1 on failure.
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
_sem_h_relax() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 1 "sem_relax NAME"
		return 1
	fi
	if _sem_call 1 relax -- "$1"; then
		return 0
	fi
	return 1
}

# sem_status NAME
#   Describe NAME for people: live or stale, value, waiters, last operation, owner, mode
#   and kernel ids. Programs should use `semctl-helper status --json NAME`.
#   Returns: 0 for a live semaphore; 1 otherwise (a stale record is still described).
#   Stdout:  the description.
#   Stderr:  one line saying why, when there is nothing to describe.
sem_status() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 0 "sem_status NAME"
		return 1
	fi
	if _sem_call 0 status -- "$1"; then
		return 0
	fi
	return 1
}

# sem_follow NAME
#   Print a time-stamped line with NAME's value and waiters now and whenever they change
#   (sampled every 20 ms), until interrupted (Ctrl-C) or until NAME is destroyed; then a
#   last line.
#   Returns: 0 once it stops; 1 when NAME can't be followed.
#   Stdout:  the lines.
#   Stderr:  one line saying why, on failure.
sem_follow() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 0 "sem_follow NAME"
		return 1
	fi
	if _sem_call 0 follow -- "$1"; then
		return 0
	fi
	return 1
}

# _sem_errfd: set the caller's local _sem_fd to a new descriptor for our stderr (or for
# /dev/null if stderr is closed), chosen by bash among the free ones, so that no
# descriptor of the caller's is hidden from the command. The caller closes it.
_sem_errfd() {
	if [[ -e /dev/fd/2 ]]; then
		exec {_sem_fd}>&2
	else
		exec {_sem_fd}>/dev/null
	fi
}

# _sem_answer FD: read one line from FD into the caller's _sem_ack, or fail at end of
# file. An explicit -t: a TMOUT in the caller's shell must not cut the wait short.
_sem_answer() {
	local _sem_st
	_sem_ack=''
	while :; do
		IFS= read -r -t 2000000000 -u "$1" _sem_ack && return 0
		_sem_st=$?
		if ((_sem_st <= 128)); then
			return 1
		fi
	done
}

# _sem_run_cmd COMMAND...: the command of a function-path sem_run, one function call down,
# so that a `return` in it (even `builtin return`, `eval return`) returns here, not past
# the release.
_sem_run_cmd() {
	"$@"
}

# _sem_free_fds VAR...: set each of the caller's locals VAR to a descriptor number that is
# free now, chosen by bash as for a {var} redirection (so that no descriptor of the
# caller's is hidden), and leave it closed.
_sem_free_fds() {
	local _sem_v _sem_n
	local -a _sem_got=()
	for _sem_v; do
		exec {_sem_n}</dev/null
		_sem_got+=("$_sem_n")
		builtin printf -v "$_sem_v" %s "$_sem_n"
	done
	for _sem_n in "${_sem_got[@]}"; do
		exec {_sem_n}<&-
	done
}

# _sem_holder MODE NAME: the body of the process substitution that starts the holder
# (semctl-helper hold) for sem_run's functions (MODE fn: it reads the release pipe on
# descriptor $_sem_a) or for sem_hold (MODE shell). Reads the caller's _sem_h, _sem_me,
# _sem_a and _sem_opt. Never returns.
_sem_holder() {
	# A closed stderr stays closed for bash, but the helper must have somewhere to write.
	[[ -e /dev/fd/2 ]] || exec 2>/dev/null
	if [[ $1 == fn ]]; then
		SEMCTL_PARENT=$_sem_me SEMCTL_CALLER=sem_run exec "$_sem_h" hold "${_sem_opt[@]}" -- "$2" <"/dev/fd/$_sem_a"
	fi
	SEMCTL_PARENT=$_sem_me SEMCTL_CALLER=sem_hold exec "$_sem_h" hold --shell "${_sem_opt[@]}" -- "$2" </dev/null
}

# _sem_run_held A B CODE NAME COMMAND...: the function path of sem_run, once the holder runs. A
# is the release pipe (read-write: we write the byte, the holder reads; our own reader
# means a write can't raise SIGPIPE), B the holder's answers. We read "ok" (or "no
# STATUS"), run COMMAND, then send the byte and read until the holder has ended, which is
# when the kernel has taken its count back.
_sem_run_held() {
	local _sem_a=$1 _sem_b=$2 _sem_code=$3 _sem_name=$4 _sem_ack='' _sem_rc=0 _sem_early=0
	shift 4
	if _sem_answer "$_sem_b" && [[ $_sem_ack == ok || $_sem_ack == "ok "* ]]; then
		# As a normal call: under the caller's set -e a failure ends the shell here, and
		# the holder sees the pipe's end and gives the count back. Under a lease (Redis)
		# the answer is "ok FENCE", and the function sees SEM_FENCE, for its run only.
		if [[ $_sem_ack == "ok "* ]]; then
			SEM_FENCE=${_sem_ack#ok } _sem_run_cmd "$@"
		else
			_sem_run_cmd "$@"
		fi
		_sem_rc=$?
		# Anything readable now is the end of file: the holder ended before we let it go.
		if read -t 0 -u "$_sem_b"; then
			_sem_early=1
		fi
		builtin printf x >&"$_sem_a"
		_sem_answer "$_sem_b" || :
		if ((_sem_early)); then
			case $_sem_name in
			posix:*) builtin printf '%s\n' "sem_run: the holder of the count ended while the command ran; the count is lost (POSIX semaphores have no undo)" >&2 ;;
			# The holder said itself that its lease was lost; as for a program, sem_run
			# then returns 122.
			redis:* | rediss:*) _sem_rc=122 ;;
			*) builtin printf '%s\n' "sem_run: the holder of the count ended while the command ran; the count went back early" >&2 ;;
			esac
		fi
		return "$_sem_rc"
	fi
	# No count: "no 1" is a timeout, "no N" an error (the holder said why on stderr) or
	# a signal (128+N); nothing at all, a holder killed while it waited. The byte stops
	# a holder still waiting (our read may have been cut short).
	builtin printf x >&"$_sem_a"
	case $_sem_ack in
	'no 1') return "$_sem_code" ;;
	no\ 1[3-9][0-9] | no\ 2[0-9][0-9]) return "${_sem_ack#no }" ;;
	no\ *) return 125 ;;
	esac
	builtin printf '%s\n' "sem_run: the holder ended without taking a count" >&2
	return 125
}

# _sem_run_here CODE NAME COMMAND...: sem_run for a function or builtin, which must run
# in this shell; the helper options are in the caller's _sem_opt. A holder process takes
# the count with SEM_UNDO and keeps it until a byte or the end of file comes on its pipe.
# Both pipes live only in the redirections of one compound command, never in descriptors
# of the shell's own: bash closes them when the command ends, however it ends, and that
# includes an interactive shell abandoning the function at Ctrl-C (it jumps back to the
# prompt and runs none of our code, but undoes redirections). Whatever the function
# starts inherits the release pipe, so if the function never returns (the shell killed,
# exit, Ctrl-C), the count stays held until those processes have ended too. The holder
# leaves the process substitution at once (a bare `wait` in COMMAND must not wait for it).
_sem_run_here() {
	local _sem_h='' _sem_a='' _sem_b='' _sem_me=$BASHPID
	if ! _sem_helper; then
		builtin printf '%s\n' "sem_run: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
		return 125
	fi
	_sem_free_fds _sem_a _sem_b
	# A: a fresh pipe, opened read-write; B: the holder's answers. A plain command, not
	# `|| ...`, which would turn off the caller's set -e inside the function.
	eval "{ _sem_run_held $_sem_a $_sem_b \"\$@\"; } $_sem_a<> <(builtin :) $_sem_b< <(_sem_holder fn \"\$2\")"
}

# _sem_options WHO ARGS...: parse the leading options of sem_run (WHO sem_run: -w, -E,
# -n, --init, --mode, --group, -h/--help) or sem_hold (-n, --init, --mode, --group) into
# the caller's _sem_opt (the helper's options) and _sem_e (-E), and set the caller's
# _sem_n to how many arguments they took. Returns 2 for --help; 1 after one line on
# stderr saying what is wrong.
_sem_options() {
	local _sem_who=$1 _sem_o _sem_v
	shift
	_sem_n=0
	while (($#)); do
		case $1 in
		--)
			_sem_n=$((_sem_n + 1))
			return 0
			;;
		-h | --help) return 2 ;;
		-w | -E | -n | --init | --mode | --group)
			if (($# < 2)); then
				builtin printf '%s: option %s needs a value\n' "$_sem_who" "$1" >&2
				return 1
			fi
			_sem_o=$1 _sem_v=$2
			shift 2
			_sem_n=$((_sem_n + 2))
			;;
		-[wEn]?*)
			_sem_o=${1:0:2} _sem_v=${1:2}
			shift
			_sem_n=$((_sem_n + 1))
			;;
		--init=* | --mode=* | --group=*)
			_sem_o=${1%%=*} _sem_v=${1#*=}
			shift
			_sem_n=$((_sem_n + 1))
			;;
		-?*) _sem_o=$1 ;;
		*) return 0 ;;
		esac
		case $_sem_who:$_sem_o in
		sem_run:-E) _sem_e=$_sem_v ;;
		sem_run:-w)
			if [[ -z $_sem_v ]]; then
				builtin printf '%s\n' 'sem_run: invalid timeout "": expected seconds, such as 5 or 0.5' >&2
				return 1
			fi
			_sem_opt+=(-w "$_sem_v")
			;;
		*:-n) _sem_opt+=(--count "$_sem_v") ;;
		*:--init | *:--mode | *:--group) _sem_opt+=("$_sem_o" "$_sem_v") ;;
		sem_run:*)
			builtin printf 'sem_run: unknown option %s (see sem_run --help)\n' "$_sem_o" >&2
			return 1
			;;
		*)
			builtin printf 'sem_hold: unknown option %s (usage: sem_hold [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME [TIMEOUT])\n' "$_sem_o" >&2
			return 1
			;;
		esac
	done
	return 0
}

# _sem_init_given WHO: fail with one line if the caller's _sem_opt has --mode or --group
# without --init (they describe a NAME that --init creates).
_sem_init_given() {
	local _sem_x _sem_init=0 _sem_other=''
	for _sem_x in "${_sem_opt[@]}"; do
		case $_sem_x in
		--init) _sem_init=1 ;;
		--mode | --group) _sem_other=$_sem_x ;;
		esac
	done
	if [[ -n $_sem_other ]] && ((!_sem_init)); then
		builtin printf '%s: %s needs --init (it applies to a NAME that --init creates)\n' "$1" "$_sem_other" >&2
		return 1
	fi
	return 0
}

# sem_run [-w SECONDS] [-E CODE] [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]]
#         NAME COMMAND [ARG...]
#   Take COUNT counts of NAME (default 1, in one step; waiting as sem_wait does), run
#   COMMAND, and give them back when COMMAND ends, however it ends: the kernel returns them
#   (SEM_UNDO) even when COMMAND, this shell or a helper is killed with -9. COMMAND may be
#   a program, a shell function or a builtin; functions and builtins run in this shell,
#   seeing and setting its variables. A program holds the counts itself, and keeps them
#   if this shell is killed, until it ends; a function's counts stay held, if the function
#   never returns (shell killed, exit, Ctrl-C at a prompt), until the processes it started
#   have ended. Ctrl-C or SIGTERM while waiting takes nothing.
#   -w SECONDS     wait at most this long (fractions allowed; 0: try once).
#   -E CODE        the status when no count came in time (0..255, default 1, as flock's).
#   -n COUNT       take COUNT counts at once (1..32767); refused at once if NAME can never
#                  hold that many (more than its initial value).
#   --init VALUE   create NAME with VALUE if it doesn't exist (exactly one of many racing
#                  callers creates it); otherwise use it as it is.
#   --mode MODE    with --init: the mode of a new NAME (octal, default 0600).
#   --group GROUP  with --init: the group of a new NAME.
#   --help         print this usage and return 0.
#   Returns: COMMAND's status; CODE when no count came in time; 125 when sem_run itself
#            fails (no such semaphore, bad arguments); 126 when COMMAND can't be
#            executed; 127 when it isn't found; 128+N when a signal N ended the wait.
#   Stdout:  COMMAND's.
#   Stderr:  COMMAND's, and one line saying why when sem_run itself fails.
#   Note: for a function or builtin, the holder runs as a process substitution, so $!
#   changes. break and continue are refused (125).
sem_run() {
	local _sem_e=1 _sem_h='' _sem_rc=0 _sem_fd='' _sem_n=0
	local -a _sem_opt=()
	_sem_options sem_run "$@" || _sem_rc=$?
	case $_sem_rc in
	2)
		_sem_run_usage
		return 0
		;;
	1) return 125 ;;
	esac
	if ! _sem_init_given sem_run; then
		return 125
	fi
	shift "$_sem_n"
	if (($# < 2)); then
		builtin printf '%s\n' "usage: sem_run [-w SECONDS] [-E CODE] [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME COMMAND [ARG...] (see sem_run --help)" >&2
		return 125
	fi
	# Patterns, not a regular expression: this runs on every call.
	case $_sem_e in
	1) ;;
	'' | *[!0-9]* | ????*)
		builtin printf 'sem_run: invalid exit code "%s": expected 0 to 255\n' "$_sem_e" >&2
		return 125
		;;
	*)
		if ((10#$_sem_e > 255)); then
			builtin printf 'sem_run: invalid exit code "%s": expected 0 to 255\n' "$_sem_e" >&2
			return 125
		fi
		_sem_e=$((10#$_sem_e))
		;;
	esac
	case $2 in
	*/*) ;; # a path names a program, never a function or builtin
	break | continue)
		# They would act on sem_run's own loops and calls, not the caller's.
		builtin printf 'sem_run: %s can'"'"'t be run under sem_run\n' "$2" >&2
		return 125
		;;
	*)
		if declare -F -- "$2" >/dev/null || _sem_builtin "$2"; then
			# A plain call, not `|| ...`: that would turn off the caller's set -e inside
			# the function. The status is sem_run's, and a set -e shell stops here just as
			# it would on the function's own failure.
			_sem_run_here "$_sem_e" "$@"
			return
		fi
		;;
	esac
	# A program: the helper takes the count and execs it, so that the count belongs to
	# the program's own process. The braces keep bash's "Killed" line off stderr.
	if ! _sem_helper; then
		builtin printf '%s\n' "sem_run: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
		return 125
	fi
	_sem_errfd
	{ SEMCTL_PARENT=$BASHPID SEMCTL_CALLER=sem_run command "$_sem_h" run "${_sem_opt[@]}" -E "$_sem_e" -- "$@" 2>&"$_sem_fd" {_sem_fd}>&-; } 2>/dev/null || _sem_rc=$?
	exec {_sem_fd}>&-
	return "$_sem_rc"
}

# _sem_run_usage: sem_run --help.
_sem_run_usage() {
	builtin printf '%s\n' \
		'usage: sem_run [OPTIONS] NAME COMMAND [ARG...]' \
		'' \
		'Take a count of the semaphore NAME, run COMMAND (a program, a shell function or a' \
		'builtin), and give the count back when COMMAND ends, however it ends (even kill -9).' \
		'' \
		'Options:' \
		'  -w SECONDS     wait at most this long for a count (fractions allowed; 0: try once)' \
		'  -E CODE        the status when no count came in time (0..255, default 1)' \
		'  -n COUNT       take COUNT counts at once (default 1)' \
		'  --init VALUE   create NAME with VALUE if it does not exist; else use it as it is' \
		'  --mode MODE    with --init: the octal mode of a new NAME (default 0600; 0666: all users)' \
		'  --group GROUP  with --init: the group of a new NAME (use with mode 0660)' \
		'  -h, --help     print this help' \
		'' \
		'Returns COMMAND'"'"'s status; CODE when no count came in time; 125 when sem_run' \
		'itself fails (one line on stderr says why); 126 when COMMAND cannot be executed;' \
		'127 when it is not found; 128+N when signal N ended the wait.'
}

# sem_hold [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME [TIMEOUT]
#   Take COUNT counts of NAME (default 1) for the rest of this shell's life: they come back
#   when the shell ends, however it ends (exit, kill -9), or earlier at sem_release NAME.
#   Like `exec 9>lock; flock 9`, for N slots. TIMEOUT as for sem_wait. The shell is the
#   process that calls sem_hold: in ( ... ) or $( ... ) it is that subshell.
#   Returns: 0 once held; 1 when no count came in time, or on failure.
#   Stdout:  nothing.
#   Stderr:  one line saying why, on failure (nothing on a timeout).
sem_hold() {
	local _sem_h='' _sem_r='' _sem_ack='' _sem_me=$BASHPID _sem_n=0 _sem_e='' _sem_rc=0
	local -a _sem_opt=()
	_sem_options sem_hold "$@" || _sem_rc=$?
	case $_sem_rc in
	2)
		builtin printf '%s\n' "usage: sem_hold [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME [TIMEOUT]" \
			"Take COUNT counts of NAME (default 1) until this shell ends, or until sem_release NAME." \
			"Returns 0 once held; 1 when none came in time (silently), or on failure (one line on stderr)."
		return 0
		;;
	1) return 1 ;;
	esac
	if ! _sem_init_given sem_hold; then
		return 1
	fi
	shift "$_sem_n"
	if (($# < 1 || $# > 2)); then
		_sem_usage 0 "sem_hold [-n COUNT] [--init VALUE [--mode MODE] [--group GROUP]] NAME [TIMEOUT]"
		return 1
	fi
	if (($# == 2)); then
		_sem_opt+=(-w "$2")
	fi
	if ! _sem_helper; then
		builtin printf '%s\n' "sem_hold: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
		return 1
	fi
	# The answer pipe lives only in this command's redirection (see _sem_run_here): should
	# an interactive shell abandon the wait at Ctrl-C, the holder sees its reader gone and
	# gives up. Once it has answered, the holder keeps nothing of ours open.
	_sem_free_fds _sem_r
	eval "{ _sem_answer $_sem_r; } $_sem_r< <(_sem_holder shell \"\$1\")"
	[[ $_sem_ack == ok || $_sem_ack == "ok "* ]]
}

# sem_release NAME
#   Give back the counts of NAME that this shell took with sem_hold, now.
#   Returns: 0 once they are back; 1 when this shell holds none of NAME, or on failure.
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
sem_release() {
	# `--` may come before NAME, as in the functions that take options.
	if [[ ${1-} == -- ]]; then
		shift
	fi
	if (($# != 1)); then
		_sem_usage 1 "sem_release NAME"
		return 1
	fi
	if _sem_call 1 release -- "$1"; then
		return 0
	fi
	return 1
}

# The quick functions. With the builtin loaded (see the top of this file) each is one call
# of it in this shell; what it leaves to sem.sh (status 100: a name of another kind or
# that doesn't parse, an argument that isn't UTF-8, a wrong number of arguments) goes to
# the helper path above, _sem_h_OP, which also serves when the builtin is not loaded.
if _sem_load; then
	sem_post() {
		builtin __sem post "$@" || { (($? == 100)) && _sem_h_post "$@"; }
	}
	sem_wait() {
		builtin __sem wait "$@" || { (($? == 100)) && _sem_h_wait "$@"; }
	}
	sem_trywait() {
		builtin __sem trywait "$@" || { (($? == 100)) && _sem_h_trywait "$@"; }
	}
	sem_peek() {
		builtin __sem peek "$@" || { (($? == 100)) && _sem_h_peek "$@"; }
	}
	sem_relax() {
		builtin __sem relax "$@" || { (($? == 100)) && _sem_h_relax "$@"; }
	}
else
	sem_post() { _sem_h_post "$@"; }
	sem_wait() { _sem_h_wait "$@"; }
	sem_trywait() { _sem_h_trywait "$@"; }
	sem_peek() { _sem_h_peek "$@"; }
	sem_relax() { _sem_h_relax "$@"; }
fi
unset -f _sem_load

# Toolbox's include() sources a module, then calls its __init. Define one only when
# toolbox is loading us: it declares __TOOLBOX_INCLUDED (possibly still empty, hence
# declare -p rather than [[ -v ]]).
if declare -p __TOOLBOX_INCLUDED >/dev/null 2>&1; then
	__init() {
		local _sem_h=''
		if ! _sem_helper; then
			builtin printf '%s\n' "sem: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
			return 1
		fi
		return 0
	}
fi
