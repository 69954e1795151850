# shellcheck shell=bash
#
# sem.sh: counting semaphores for bash scripts.
#
#   source sem.sh
#   sem_init  NAME VALUE [MODE]   create NAME with VALUE (0..32767), MODE octal (0600)
#   sem_post  NAME                add one, waking the next waiter
#   sem_wait  NAME [TIMEOUT]      take one, sleeping until one is posted (TIMEOUT seconds)
#   sem_trywait NAME              take one if one is there now
#   sem_peek  NAME                print the value
#   sem_destroy NAME              remove NAME (its owner only), waking its waiters
#
# Every function returns 0 or 1. A NAME is a path; a relative NAME is under $HOME.
# The work is done by semctl-helper on System V semaphore sets: waiters sleep in the
# kernel and wake within microseconds of a post.
#
# Environment (read at each call, never set by this file):
#   SEMCTL_HELPER  path of the semctl-helper binary to use. Otherwise the helper is
#                  looked for beside this file (the `make install` layout), then in the
#                  repository's target/release, then on PATH.
#   SEM_VERBOSE    when 1, post, wait, trywait and peek print the helper's one-line
#                  reason for a failure on stderr (they are silent otherwise).
#
# Sourcing defines only the sem_* functions and private _sem_* helpers: no variables, no
# shell options, no traps. It is safe to source twice, and works in a caller that runs
# `set -euo pipefail`.

if [ -z "${BASH_VERSION:-}" ]; then
	echo "sem.sh: this library needs bash" >&2
	return 1
fi

# Record this file's directory, resolved now (the caller may cd later), and, when this
# file was sourced through a symlink, the directory of the real file too. They live in a
# function rather than variables, so that sourcing leaks no variables.
_sem_locate() {
	local _sem_src=${BASH_SOURCE[0]} _sem_dir _sem_real=''
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
}
_sem_locate
unset -f _sem_locate

# _sem_helper: set the caller's local _sem_h to the helper's path. Returns 1 if none.
_sem_helper() {
	local _sem_d='' _sem_d2='' _sem_rest _sem_p
	if [[ -n ${SEMCTL_HELPER:-} ]]; then
		_sem_h=$SEMCTL_HELPER
		return 0
	fi
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
			return 0
		fi
	done
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
	local _sem_quiet=$1 _sem_h='' _sem_rc=0
	shift
	if [[ $_sem_quiet == 1 && ${SEM_VERBOSE:-} != 1 ]]; then
		if ! _sem_helper; then
			return 1
		fi
		{ command "$_sem_h" "$@"; } 2>/dev/null
		return
	fi
	if ! _sem_helper; then
		builtin printf '%s\n' "sem.sh: cannot find semctl-helper (set SEMCTL_HELPER, or run make or make install)" >&2
		return 1
	fi
	{ command "$_sem_h" "$@" 2>&9; } 9>&2 2>/dev/null || _sem_rc=$?
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

# sem_init NAME VALUE [MODE]
#   Create semaphore NAME with counter VALUE (decimal digits, 0..32767). MODE is the
#   kernel set's octal permissions, default 0600 (0660 lets the group use it).
#   Returns: 0 on success; 1 on any failure, leaving no file and no kernel set.
#   Stdout:  nothing.
#   Stderr:  one line saying why, on failure.
sem_init() {
	if (($# < 2 || $# > 3)); then
		_sem_usage 0 "sem_init NAME VALUE [MODE]"
		return 1
	fi
	if _sem_call 0 init -- "$@"; then
		return 0
	fi
	return 1
}

# sem_post NAME
#   Add one to NAME's counter, waking the next waiter.
#   Returns: 0 on success; 1 on failure (no such semaphore, at 32767, no permission).
#   Stdout, stderr: nothing (stderr: the reason, with SEM_VERBOSE=1).
sem_post() {
	if (($# != 1)); then
		_sem_usage 1 "sem_post NAME"
		return 1
	fi
	if _sem_call 1 post -- "$1"; then
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
sem_wait() {
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
sem_trywait() {
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
sem_peek() {
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
	if (($# != 1)); then
		_sem_usage 0 "sem_destroy NAME"
		return 1
	fi
	if _sem_call 0 destroy -- "$1"; then
		return 0
	fi
	return 1
}

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
