#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2030,SC2031 # the single-quoted scripts run in child shells
# sh/sem.sh as a library living inside somebody else's shell (invariants 7 and 8): safe to
# source under any options, leaves nothing behind, never exits, finds its helper, and
# works as a toolbox module.

load test_helper

# The environment bats was started in: make needs the real HOME to find cargo and rustup
# (setup points HOME at a private directory).
ORIG_HOME=$HOME
ORIG_PATH=$PATH

LIB=$REPO_ROOT/sh/sem.sh
export LIB

# in_bash SCRIPT [ARG...]: run SCRIPT in a fresh, non-interactive bash (no rc files),
# with $LIB, $D and $HOME set, under `run --separate-stderr`.
in_bash() {
	local script=$1
	shift
	export D
	run --separate-stderr bash --norc --noprofile -c "$script" bash "$@"
}

# The state of the calling shell that the library must leave alone: options, shopt,
# traps, umask, directory and every variable but those bash itself changes all the time.
# Defined in the scripts below (in a file, so that it adds no variables of its own but the
# local it declares).
SNAP='
snap() {
	builtin printf "IFS=%q\n" "$IFS"
	local __v __vs
	set -o
	shopt -p
	trap -p
	umask
	builtin pwd
	mapfile -t __vs < <(compgen -v | LC_ALL=C sort)
	for __v in "${__vs[@]}"; do
		case $__v in
		__v | __vs | BASH | BASH_* | BASHPID | FUNCNAME | _ | PIPESTATUS | LINENO | RANDOM | \
			SRANDOM | SECONDS | EPOCHREALTIME | EPOCHSECONDS | COLUMNS | LINES | HISTCMD) continue ;;
		esac
		declare -p "$__v" 2>/dev/null || echo "listed but not declared: $__v"
	done
}
'

# The hostile settings a caller may have: strict mode, odd shopts, traps, an odd IFS.
HOSTILE='
set -euo pipefail
set -f -E -T
shopt -s nullglob failglob extglob globstar nocasematch nocaseglob lastpipe dotglob
trap "echo INT-trap" INT
trap "echo ERR-trap-fired >&2" ERR
trap ":" RETURN
trap "echo EXIT" EXIT
umask 0027
IFS=":/"
'

@test "sourcing prints nothing and returns 0" {
	in_bash 'source "$LIB"; echo "rc=$?"'
	assert_success
	assert_output 'rc=0'
	assert_equal "$stderr" ''
}

@test "under set -euo pipefail, every function works, and failures inside if don't exit" {
	in_bash 'set -euo pipefail
		source "$LIB"
		sem_init "$D/s" 1
		sem_peek "$D/s"
		sem_post "$D/s"
		sem_wait "$D/s"
		sem_wait "$D/s" 0.5
		sem_trywait "$D/s" || echo "trywait 1"
		sem_post "$D/s"
		sem_trywait "$D/s"
		if sem_trywait "$D/s"; then echo "trywait took"; else echo "trywait 1"; fi
		if sem_wait "$D/s" 0.1; then echo "wait took"; else echo "wait 1"; fi
		if sem_wait "$D/s" 0; then echo "wait 0 took"; else echo "wait0 1"; fi
		if sem_init "$D/s" 1 2>/dev/null; then echo "init twice"; else echo "init 1"; fi
		if sem_init "$D/t" 99999 2>/dev/null; then echo "init big"; else echo "init big 1"; fi
		if sem_post "$D/none"; then echo "post none"; else echo "post 1"; fi
		if sem_peek "$D/none"; then echo "peek none"; else echo "peek 1"; fi
		if sem_wait "$D/none"; then echo "wait none"; else echo "wait none 1"; fi
		if sem_destroy "$D/none" 2>/dev/null; then echo "destroy none"; else echo "destroy 1"; fi
		if sem_peek; then echo "peek noargs"; else echo "peek usage 1"; fi
		! sem_post "$D/none"
		sem_peek "$D/none" || true
		sem_destroy "$D/s"
		echo "end $-"'
	assert_success
	assert_equal "$stderr" ''
	assert_output "1
trywait 1
trywait 1
wait 1
wait0 1
init 1
init big 1
post 1
peek 1
wait none 1
destroy 1
peek usage 1
end ehuBc"
	[[ ! -e $D/s ]]
}

@test "sourcing changes no option, shopt, trap, umask, directory or variable (plain shell)" {
	in_bash "$SNAP"'
		snap >"$D/before"
		source "$LIB"
		snap >"$D/after-source"
		diff "$D/before" "$D/after-source" && echo same'
	assert_success
	assert_output same
	assert_equal "$stderr" ''
}

@test "sourcing changes no option, shopt, trap, umask, directory or variable (hostile shell)" {
	in_bash "$SNAP$HOSTILE"'
		snap >"$D/before"
		source "$LIB"
		snap >"$D/after-source"
		diff "$D/before" "$D/after-source" && echo same'
	assert_success
	assert_output $'same\nEXIT'
	[[ $stderr != *ERR-trap-fired* ]] || fail "the ERR trap fired: $stderr"
}

# The calls made after sourcing, successful and failing, each followed by a snapshot.
CALLS='
check() {
	echo "$*" >>"$D/steps"
	snap >"$D/now"
	diff "$D/before" "$D/now" >&2 || echo "state changed by: $*"
}
snap >"$D/before"
source "$LIB"
check source
sem_init "$D/s" 2 0600;                          check init
sem_peek "$D/s" >/dev/null;                      check peek
sem_post "$D/s";                                 check post
sem_wait "$D/s";                                 check wait
sem_wait "$D/s" 0.05;                            check wait timeout
sem_trywait "$D/s";                              check trywait
if sem_trywait "$D/s"; then echo took; fi;       check failing trywait
if sem_wait "$D/s" 0.05; then echo took; fi;     check failing timed wait
if sem_post "$D/none"; then echo posted; fi;     check failing post
if sem_peek "$D/none"; then echo peeked; fi;     check failing peek
if sem_init "$D/s" 1 2>/dev/null; then :; fi;    check failing init
if sem_init 2>/dev/null; then :; fi;             check init usage
if sem_wait; then :; fi;                         check wait usage
if sem_destroy "$D/none" 2>/dev/null; then :; fi; check failing destroy
if SEM_VERBOSE=1 sem_peek "$D/none" 2>/dev/null; then :; fi; check verbose peek
if SEMCTL_HELPER=/nonexistent sem_post "$D/s"; then :; fi; check missing helper
sem_destroy "$D/s";                              check destroy
echo "done $(wc -l <"$D/steps")"
'

@test "no call, successful or failing, changes the caller's state (plain shell)" {
	in_bash "$SNAP$CALLS"
	assert_success
	assert_output 'done 18'
	assert_equal "$stderr" ''
	[[ ! -e $D/s ]]
}

@test "no call, successful or failing, changes the caller's state (hostile shell)" {
	in_bash "$SNAP$HOSTILE$CALLS"
	assert_success
	assert_output $'done 18\nEXIT'
	assert_equal "$stderr" ''
	[[ ! -e $D/s ]]
}

@test "variables: none leak from sourcing or from calls (compgen -v)" {
	in_bash '
		compgen -v | grep -Ev "^(BASH_.*|FUNCNAME|_|PIPESTATUS|LINENO|RANDOM|SRANDOM|SECONDS|EPOCH.*|BASHPID)$" >"$D/v0"
		source "$LIB"
		sem_init "$D/s" 1; sem_peek "$D/s" >/dev/null; sem_post "$D/s"; sem_wait "$D/s" 1
		sem_trywait "$D/s"; sem_trywait "$D/s" || :; sem_wait "$D/s" 0.01 || :
		sem_peek "$D/none" || :; sem_destroy "$D/s"
		compgen -v | grep -Ev "^(BASH_.*|FUNCNAME|_|PIPESTATUS|LINENO|RANDOM|SRANDOM|SECONDS|EPOCH.*|BASHPID)$" >"$D/v1"
		diff "$D/v0" "$D/v1" && echo same'
	assert_success
	assert_output same
}

@test "a plain source defines only sem_* and _sem_* functions, and no __init" {
	in_bash 'declare -F | sort >"$D/f0"; source "$LIB"; declare -F | sort >"$D/f1"
		comm -13 "$D/f0" "$D/f1"'
	assert_success
	local line names=()
	for line in "${lines[@]}"; do
		names+=("${line#declare -f }")
		[[ $line =~ ^declare\ -f\ _?sem_[a-z_]+$ ]] || fail "unexpected function: $line"
	done
	local f
	for f in sem_init sem_post sem_wait sem_trywait sem_peek sem_destroy; do
		[[ " ${names[*]} " == *" $f "* ]] || fail "$f is not defined"
	done
	in_bash 'source "$LIB"; declare -F __init || echo "no __init"'
	assert_output 'no __init'
}

@test "sourcing twice is harmless: functions work and nothing leaks" {
	in_bash "$SNAP"'
		source "$LIB"
		declare -F >"$D/f1"
		snap >"$D/once"
		source "$LIB"
		declare -F >"$D/f2"
		snap >"$D/twice"
		diff "$D/f1" "$D/f2" && diff "$D/once" "$D/twice" && echo same
		sem_init "$D/s" 1 && sem_wait "$D/s" && sem_post "$D/s" && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output $'same\n1'
	assert_equal "$stderr" ''
}

@test "sourcing twice under set -euo pipefail is harmless" {
	in_bash 'set -euo pipefail; source "$LIB"; source "$LIB"; source "$LIB"
		sem_init "$D/s" 3; sem_peek "$D/s"; sem_destroy "$D/s"; echo end'
	assert_success
	assert_output $'3\nend'
	assert_equal "$stderr" ''
}

@test "never exits: wrong argument counts return 1 and the shell continues" {
	in_bash 'source "$LIB"
		sem_init; echo "init0 $?"
		sem_init "$D/s"; echo "init1 $?"
		sem_init "$D/s" 1 0600 x; echo "init4 $?"
		sem_post; echo "post0 $?"
		sem_post "$D/s" x; echo "post2 $?"
		sem_wait; echo "wait0 $?"
		sem_wait "$D/s" 1 x; echo "wait3 $?"
		sem_trywait; echo "trywait0 $?"
		sem_trywait "$D/s" x; echo "trywait2 $?"
		sem_peek; echo "peek0 $?"
		sem_peek "$D/s" x; echo "peek2 $?"
		sem_destroy; echo "destroy0 $?"
		sem_destroy "$D/s" x; echo "destroy2 $?"
		echo alive'
	assert_success
	assert_output 'init0 1
init1 1
init4 1
post0 1
post2 1
wait0 1
wait3 1
trywait0 1
trywait2 1
peek0 1
peek2 1
destroy0 1
destroy2 1
alive'
	# sem_init and sem_destroy say why on stderr, one line per call; the others are silent.
	assert_equal "${#stderr_lines[@]}" 5
	local l
	for l in "${stderr_lines[@]}"; do
		[[ $l == *sem_init* || $l == *sem_destroy* ]] || fail "unexpected stderr line: $l"
	done
	[[ ! -e $D/s ]]
}

@test "never exits: failures of the helper return 1 and the shell continues" {
	in_bash 'source "$LIB"
		sem_post "$D/none"; echo "post $?"
		sem_wait "$D/none"; echo "wait $?"
		sem_trywait "$D/none"; echo "trywait $?"
		sem_peek "$D/none"; echo "peek $?"
		sem_destroy "$D/none" 2>/dev/null; echo "destroy $?"
		sem_init "$D/none" abc 2>/dev/null; echo "init $?"
		echo alive'
	assert_success
	assert_output $'post 1\nwait 1\ntrywait 1\npeek 1\ndestroy 1\ninit 1\nalive'
	assert_equal "$stderr" ''
}

@test "every failure is 1, whatever the helper's exit code" {
	"$HELPER" init "$D/s" 0
	"$HELPER" init "$D/max" 32767
	local call
	# helper: 1 would block, 2 usage, 3 no such semaphore, 5 out of range, 6 exists.
	for call in "sem_trywait $D/s" "sem_init $D/t 1 999" "sem_peek $D/none" \
		"sem_post $D/max" "sem_init $D/s 1"; do
		# shellcheck disable=SC2086 # the names hold no spaces
		run --separate-stderr $call
		assert_failure 1
		assert_output ''
	done
	# 127 and 126: a helper that can't be run (the builtin would need none).
	use_helper
	SEMCTL_HELPER=/nonexistent run --separate-stderr sem_peek "$D/s"
	assert_failure 1
	assert_output ''
	SEMCTL_HELPER=$BATS_TEST_TMPDIR run --separate-stderr sem_peek "$D/s"
	assert_failure 1
	assert_output ''
}

@test "dash refuses the library with return 1 and keeps running" {
	command -v dash >/dev/null || skip "no dash"
	cd "$REPO_ROOT"
	run --separate-stderr dash -c '. ./sh/sem.sh; echo "after $?"'
	assert_success
	assert_output 'after 1'
	assert_equal "$stderr" 'sem.sh: this library needs bash'
	run --separate-stderr dash -c '. ./sh/sem.sh || echo refused; command -v sem_init || echo "no sem_init"'
	assert_success
	assert_output $'refused\nno sem_init'
}

@test "sh (POSIX sh) refuses the library with return 1 and keeps running" {
	cd "$REPO_ROOT"
	run --separate-stderr sh -c '. ./sh/sem.sh; echo "after $?"'
	if [[ $(readlink -f "$(command -v sh)") == */bash ]]; then
		skip "sh is bash here"
	fi
	assert_success
	assert_output 'after 1'
	assert_equal "${#stderr_lines[@]}" 1
}

# --- toolbox ---

# A stand-in for toolbox's include: declare the registry, source the module with its
# output discarded, call its __init, unset it.
TOOLBOX='
declare -A __TOOLBOX_INCLUDED
include() {
	local module=$1
	. "$module" &>/dev/null || return 1
	if declare -F __init >/dev/null; then
		if ! __init; then
			unset -f __init
			return 1
		fi
		unset -f __init
	fi
	__TOOLBOX_INCLUDED[$module]=1
}
'

@test "toolbox: __init is defined when __TOOLBOX_INCLUDED is declared (even empty), and returns 0" {
	in_bash 'declare -A __TOOLBOX_INCLUDED
		. "$LIB" &>/dev/null
		declare -F __init
		__init; echo "init $?"
		unset -f __init
		declare -F __init || echo gone
		sem_init "$D/s" 1 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output $'__init\ninit 0\ngone\n1'
	assert_equal "$stderr" ''
}

@test "toolbox: include works, prints nothing, and leaves no __init" {
	in_bash "$TOOLBOX"'
		include "$LIB"; echo "include $?"
		declare -F __init || echo "no __init"
		echo "registry: ${!__TOOLBOX_INCLUDED[*]}" | sed "s|$LIB|LIB|"
		sem_init "$D/s" 2 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output $'include 0\nno __init\nregistry: LIB\n2'
	assert_equal "$stderr" ''
}

@test "toolbox: include works under set -euo pipefail" {
	in_bash "set -euo pipefail; $TOOLBOX"'
		include "$LIB"
		sem_init "$D/s" 1; sem_wait "$D/s"; sem_peek "$D/s"; sem_destroy "$D/s"; echo end'
	assert_success
	assert_output $'0\nend'
	assert_equal "$stderr" ''
}

@test "toolbox: a non-empty __TOOLBOX_INCLUDED also gets an __init" {
	in_bash 'declare -A __TOOLBOX_INCLUDED=([log]=1)
		. "$LIB" &>/dev/null
		__init && echo ok'
	assert_success
	assert_output ok
}

@test "toolbox: __init returns 0 with a good SEMCTL_HELPER" {
	export SEMCTL_HELPER=$HELPER
	in_bash 'declare -A __TOOLBOX_INCLUDED; . "$LIB" &>/dev/null; __init; echo "init $?"'
	assert_success
	assert_output 'init 0'
	assert_equal "$stderr" ''
}

@test "toolbox: __init fails with one line when no helper can be found" {
	mkdir "$BATS_TEST_TMPDIR/lonely"
	cp "$LIB" "$BATS_TEST_TMPDIR/lonely/sem.sh"
	export LIB=$BATS_TEST_TMPDIR/lonely/sem.sh
	PATH=/usr/bin:/bin in_bash "$TOOLBOX"'
		if include "$LIB"; then echo included; else echo "include failed"; fi
		declare -F __init || echo "no __init"'
	assert_success
	assert_output $'include failed\nno __init'
	assert_equal "${#stderr_lines[@]}" 1
	[[ $stderr == *semctl-helper* ]] || fail "unclear message: $stderr"
}

@test "toolbox: without __TOOLBOX_INCLUDED no __init is defined, and an existing one is kept" {
	in_bash '__init() { echo mine; }; source "$LIB"; __init'
	assert_success
	assert_output mine
	in_bash 'declare -A OTHER; source "$LIB"; declare -F __init || echo "no __init"'
	assert_output 'no __init'
}

# --- finding the helper ---

# wrapper PATH TAG: a helper at PATH that logs TAG to $BATS_TEST_TMPDIR/log and then runs
# the real helper.
wrapper() {
	mkdir -p "${1%/*}"
	printf '#!/bin/bash\necho %s >>"%s"\nexec "%s" "$@"\n' "$2" "$BATS_TEST_TMPDIR/log" "$HELPER" >"$1"
	chmod 755 "$1"
}

# A checkout-like tree with a helper in every place the library looks.
make_tree() {
	T=$BATS_TEST_TMPDIR/tree
	mkdir -p "$T/sh"
	cp "$LIB" "$T/sh/sem.sh"
	wrapper "$T/env/semctl-helper" env
	wrapper "$T/sh/semctl-helper" beside
	wrapper "$T/target/release/semctl-helper" repo
	wrapper "$T/bin/semctl-helper" path
	export T
}

# USE_TREE: init, peek and destroy through the tree's library; prints the peeked value.
USE_TREE='source "$T/sh/sem.sh"; sem_init "$D/s" 4 && sem_peek "$D/s" && sem_destroy "$D/s"'

@test "lookup: SEMCTL_HELPER wins over everything" {
	make_tree
	SEMCTL_HELPER=$T/env/semctl-helper PATH=$T/bin:/usr/bin:/bin in_bash "$USE_TREE"
	assert_success
	assert_output 4
	assert_equal "$stderr" ''
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" env
}

@test "lookup: SEMCTL_HELPER is read at each call, not when sourcing" {
	make_tree
	PATH=$T/bin:/usr/bin:/bin in_bash 'source "$T/sh/sem.sh"
		export SEMCTL_HELPER=$T/env/semctl-helper
		sem_init "$D/s" 1
		unset SEMCTL_HELPER
		sem_destroy "$D/s"'
	assert_success
	assert_equal "$(cat "$BATS_TEST_TMPDIR/log")" $'env\nbeside'
}

@test "lookup: next, the helper beside the library (the make install layout)" {
	make_tree
	PATH=$T/bin:/usr/bin:/bin in_bash "$USE_TREE"
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" beside
}

@test "lookup: beside the library even after the caller cds away, sourced by a relative path" {
	make_tree
	rm -r "${T:?}/target"
	cd "$T/sh"
	PATH=/usr/bin:/bin in_bash 'source ./sem.sh; cd /; sem_init "$D/s" 1 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output 1
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" beside
}

@test "lookup: a library directory with spaces, quotes, \$(...) and a newline works, runs nothing" {
	local dir=$BATS_TEST_TMPDIR/$'we ird \'$(touch pwned)" `touch pwned2`\nx'
	mkdir -p "$dir"
	cp "$LIB" "$dir/sem.sh"
	wrapper "$dir/semctl-helper" beside
	cd "$BATS_TEST_TMPDIR"
	PATH=/usr/bin:/bin in_bash 'source "$1/sem.sh"; cd /; sem_init "$D/s" 6 && sem_peek "$D/s" && sem_destroy "$D/s"' "$dir"
	assert_success
	assert_output 6
	assert_equal "$stderr" ''
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" beside
	[[ ! -e $BATS_TEST_TMPDIR/pwned && ! -e $BATS_TEST_TMPDIR/pwned2 && ! -e /pwned && ! -e /pwned2 ]]
}

@test "lookup: sourced by a relative path, CDPATH and caller functions named cd, pwd, printf don't mislead it" {
	make_tree
	rm -r "${T:?}/target"
	# A decoy tree that CDPATH would lead a plain cd to.
	mkdir -p "$BATS_TEST_TMPDIR/decoy/sh"
	wrapper "$BATS_TEST_TMPDIR/decoy/sh/semctl-helper" decoy
	cd "$T"
	CDPATH=$BATS_TEST_TMPDIR/decoy PATH=/usr/bin:/bin in_bash '
		cd() { echo "cd-function $*" >>"$BATS_TEST_TMPDIR/log"; }
		pwd() { echo "/nowhere"; }
		printf() { echo "printf-function" >>"$BATS_TEST_TMPDIR/log"; }
		source sh/sem.sh
		sem_init "$D/s" 4 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output 4
	assert_equal "$stderr" ''
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" beside
}

@test "lookup: next, the repository's target/release" {
	make_tree
	rm "$T/sh/semctl-helper"
	PATH=$T/bin:/usr/bin:/bin in_bash "$USE_TREE"
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" repo
}

@test "lookup: the checkout's own library finds target/release with no PATH help" {
	PATH=/usr/bin:/bin in_bash 'source "$LIB"; sem_init "$D/s" 5 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output 5
	assert_equal "$stderr" ''
}

@test "lookup: last, PATH" {
	make_tree
	rm -r "${T:?}/sh/semctl-helper" "${T:?}/target"
	PATH=/nonexistent::$T/bin:/usr/bin:/bin in_bash "$USE_TREE"
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" path
}

@test "lookup: a directory or a non-executable file named semctl-helper is skipped" {
	make_tree
	rm -r "${T:?}/sh/semctl-helper" "${T:?}/target"
	mkdir -p "$T/target/release/semctl-helper"
	touch "$T/sh/semctl-helper"
	mkdir -p "$T/bin0/semctl-helper"
	PATH=$T/bin0:$T/bin:/usr/bin:/bin in_bash "$USE_TREE"
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" path
}

@test "lookup: no helper anywhere: 1, with one line from init and silence from peek" {
	make_tree
	rm -r "${T:?}/sh/semctl-helper" "${T:?}/target" "${T:?}/bin"
	PATH=/usr/bin:/bin in_bash 'source "$T/sh/sem.sh"
		sem_init "$D/s" 1; echo "init $?"
		sem_peek "$D/s"; echo "peek $?"'
	assert_success
	assert_output $'init 1\npeek 1'
	assert_equal "${#stderr_lines[@]}" 1
	[[ $stderr == *semctl-helper* ]] || fail "unclear message: $stderr"
	[[ ! -e $D/s ]]
}

@test "lookup: a caller's function or alias named semctl-helper does not intercept" {
	make_tree
	rm -r "${T:?}/sh/semctl-helper" "${T:?}/target"
	PATH=$T/bin:/usr/bin:/bin in_bash '
		semctl-helper() { echo FUNCTION >>"$BATS_TEST_TMPDIR/log"; return 0; }
		shopt -s expand_aliases
		alias semctl-helper="echo ALIAS >>$BATS_TEST_TMPDIR/log"
		eval "$T/bin/semctl-helper() { echo PATH-FUNCTION >>\"\$BATS_TEST_TMPDIR/log\"; return 0; }"
		source "$T/sh/sem.sh"
		sem_init "$D/s" 4 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" path
}

@test "lookup: a caller's function shadowing the SEMCTL_HELPER path does not intercept" {
	make_tree
	SEMCTL_HELPER=$T/env/semctl-helper in_bash '
		eval "$SEMCTL_HELPER() { echo FUNCTION >>\"\$BATS_TEST_TMPDIR/log\"; return 0; }"
		source "$T/sh/sem.sh"
		sem_init "$D/s" 4 && sem_peek "$D/s" && sem_destroy "$D/s"'
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" env
}

@test "make install: the installed sem.sh works with no variables set" {
	local stage=$BATS_TEST_TMPDIR/stage
	run env HOME="$ORIG_HOME" PATH="$ORIG_PATH" timeout 120 \
		make -s -C "$REPO_ROOT" install PREFIX=/x DESTDIR="$stage"
	assert_success
	[[ -x $stage/x/bin/semctl-helper && -f $stage/x/bin/sem.sh ]]
	# Mark the installed helper so we can tell that it, not the checkout's, is used.
	mv "$stage/x/bin/semctl-helper" "$stage/x/bin/semctl-helper.real"
	printf '#!/bin/bash\necho installed >>"%s"\nexec "%s" "$@"\n' \
		"$BATS_TEST_TMPDIR/log" "$stage/x/bin/semctl-helper.real" >"$stage/x/bin/semctl-helper"
	chmod 755 "$stage/x/bin/semctl-helper"
	run --separate-stderr env -i HOME="$HOME" PATH=/usr/bin:/bin bash --norc --noprofile -c '
		source "$1/x/bin/sem.sh" && sem_init s 2 && sem_post s && sem_peek s && sem_destroy s' \
		_ "$stage"
	assert_success
	assert_output 3
	assert_equal "$stderr" ''
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" installed
	[[ ! -e $HOME/s ]]
}

# install_stage: `make install DESTDIR=$STAGE PREFIX=/usr`, as a packager runs it.
install_stage() {
	STAGE=$BATS_TEST_TMPDIR/stage
	run env HOME="$ORIG_HOME" PATH="$ORIG_PATH" timeout 300 \
		make -s -C "$REPO_ROOT" install DESTDIR="$STAGE" PREFIX=/usr
	assert_success
}

# subcommands: the helper's subcommands, as its --help lists them (so that a subcommand
# added to cli.rs is checked without editing this file).
subcommands() {
	"$HELPER" --help | awk '/^Commands:/ { c = 1; next } c && /^$/ { exit } c && /^  [a-z]/ { print $1 }'
}

@test "make install: installs a man page per subcommand and bash, zsh and fish completions" {
	install_stage
	local share=$STAGE/usr/share verb page
	[[ -x $STAGE/usr/bin/semctl-helper && -f $STAGE/usr/bin/sem.sh ]]
	[[ -f $share/bash-completion/completions/semctl-helper ]] || fail "no bash completion"
	[[ -f $share/zsh/site-functions/_semctl-helper ]] || fail "no zsh completion"
	[[ -f $share/fish/vendor_completions.d/semctl-helper.fish ]] || fail "no fish completion"
	local verbs
	verbs=$(subcommands)
	[[ $verbs == *wait* && $verbs == *run* ]] || fail "no subcommands in --help: $verbs"
	# The main page names every subcommand's page and lists the exit codes.
	page=$share/man/man1/semctl-helper.1
	grep -q '^\.TH semctl-helper 1 ' "$page" || fail "no .TH header in $page"
	grep -q '^\.SH "EXIT STATUS"' "$page" || fail "no EXIT STATUS in $page"
	for verb in $verbs; do
		[[ -f $share/man/man1/semctl-helper-$verb.1 ]] || fail "no page for $verb"
		grep -q "semctl\\\\-helper\\\\-$verb" "$page" || fail "$page does not name $verb"
	done
	# Nothing else: a page is installed for a subcommand, or for the helper itself.
	assert_equal "$(find "$share/man/man1" -type f | wc -l)" "$(($(wc -w <<<"$verbs") + 1))"
}

# render_man PAGE: run `man -l` (man-db) on PAGE, else groff, as plain text, with every
# roff warning on, under `run --separate-stderr`.
render_man() {
	if command -v man >/dev/null && man --help 2>&1 | grep -q -- --local-file; then
		run --separate-stderr env MANWIDTH=80 MANROFFOPT=-ww man -l "$1"
	else
		run --separate-stderr groff -man -Tutf8 -P-cbou -ww "$1"
	fi
}

@test "make install: the man pages render without warnings" {
	command -v man >/dev/null || command -v groff >/dev/null ||
		skip "neither man nor groff is installed (the .TH header is checked above)"
	install_stage
	local man1=$STAGE/usr/share/man/man1 verb f
	render_man "$man1/semctl-helper.1"
	assert_success
	assert_equal "$stderr" ''
	assert_output --partial 'EXIT STATUS'
	for verb in $(subcommands); do
		assert_output --partial "semctl-helper-$verb(1)"
	done
	for f in "$man1"/semctl-helper-*.1; do
		render_man "$f"
		assert_success
		assert_equal "$stderr" ''
		assert_output --partial 'SYNOPSIS'
		assert_output --partial 'semctl-helper(1)'
	done
}

@test "make install: the bash completion loads in a fresh bash and completes subcommands" {
	install_stage
	run --separate-stderr env -i PATH=/usr/bin:/bin bash --norc --noprofile -c '
		source "$1/usr/share/bash-completion/completions/semctl-helper" || exit
		spec=$(complete -p semctl-helper) || exit
		echo "$spec"
		fn=${spec##*-F }
		fn=${fn%% *}
		# What bash sets before calling a completion function for "semctl-helper wa<TAB>".
		COMP_WORDS=(semctl-helper wa)
		COMP_CWORD=1
		COMP_LINE="semctl-helper wa"
		COMP_POINT=${#COMP_LINE}
		"$fn" semctl-helper wa semctl-helper
		echo "wa: ${COMPREPLY[*]}"
		COMP_WORDS=(semctl-helper run --)
		COMP_CWORD=2
		COMP_LINE="semctl-helper run --"
		COMP_POINT=${#COMP_LINE}
		"$fn" semctl-helper -- run
		echo "run --: ${COMPREPLY[*]}"' _ "$STAGE"
	assert_success
	assert_equal "$stderr" ''
	assert_line --index 0 --regexp '^complete .*-F [^ ]+ semctl-helper$'
	assert_line --index 1 'wa: wait'
	assert_line --index 2 --partial ' --wait'
	assert_line --index 2 --partial ' --conflict-exit-code'
}

@test "make install: the zsh and fish completions parse (where those shells are installed)" {
	command -v zsh >/dev/null || command -v fish >/dev/null || skip "neither zsh nor fish is installed"
	install_stage
	if command -v zsh >/dev/null; then
		run --separate-stderr zsh -n "$STAGE/usr/share/zsh/site-functions/_semctl-helper"
		assert_success
		assert_equal "$stderr" ''
	fi
	if command -v fish >/dev/null; then
		run --separate-stderr fish -n "$STAGE/usr/share/fish/vendor_completions.d/semctl-helper.fish"
		assert_success
		assert_equal "$stderr" ''
	fi
}

@test "make uninstall: removes everything make install installed" {
	install_stage
	run env HOME="$ORIG_HOME" PATH="$ORIG_PATH" make -s -C "$REPO_ROOT" uninstall DESTDIR="$STAGE" PREFIX=/usr
	assert_success
	run find "$STAGE" -type f
	assert_success
	assert_output ''
}

# --- SEM_VERBOSE ---

@test "without SEM_VERBOSE, failing post, wait, trywait and peek are silent" {
	"$HELPER" init "$D/zero" 0
	"$HELPER" init "$D/max" 32767
	local call
	for call in "sem_post $D/none" "sem_post $D/max" "sem_wait $D/none" "sem_wait $D/zero 0.01" \
		"sem_trywait $D/zero" "sem_trywait $D/none" "sem_peek $D/none" "sem_peek" "sem_post"; do
		# shellcheck disable=SC2086 # the names hold no spaces
		run --separate-stderr $call
		assert_failure 1
		assert_output ''
		assert_equal "$stderr" ''
	done
	export SEM_VERBOSE=0
	run --separate-stderr sem_peek "$D/none"
	assert_failure 1
	assert_equal "$stderr" ''
}

@test "with SEM_VERBOSE=1, each failing post, wait, trywait and peek prints exactly one line" {
	"$HELPER" init "$D/zero" 0
	"$HELPER" init "$D/max" 32767
	export SEM_VERBOSE=1
	local call
	for call in "sem_post $D/none" "sem_post $D/max" "sem_wait $D/none" "sem_wait $D/zero 0.01" \
		"sem_wait $D/zero 0" "sem_trywait $D/zero" "sem_trywait $D/none" "sem_peek $D/none" \
		"sem_peek" "sem_post" "sem_wait" "sem_trywait"; do
		# shellcheck disable=SC2086 # the names hold no spaces
		run --separate-stderr $call
		assert_failure 1
		assert_output ''
		[[ -n $stderr && $stderr != *$'\n'* ]] || fail "$call: not exactly one line on stderr: '$stderr'"
	done
}

@test "with SEM_VERBOSE=1, successful calls stay silent" {
	export SEM_VERBOSE=1
	run --separate-stderr sem_init "$D/s" 1
	assert_success
	assert_equal "$stderr" ''
	local call
	for call in sem_post sem_wait sem_trywait sem_post; do
		run --separate-stderr "$call" "$D/s"
		assert_success
		assert_output ''
		assert_equal "$stderr" ''
	done
	run --separate-stderr sem_peek "$D/s"
	assert_success
	assert_output 1
	assert_equal "$stderr" ''
	run --separate-stderr sem_destroy "$D/s"
	assert_success
	assert_equal "$stderr" ''
}

@test "readonly caller variables with common names don't break the library" {
	run --separate-stderr bash -c '
		readonly dir=/x rest=1 quiet=1 src=1 real=1 p=1 rc=1 h=1 d=1 i=1 name=1 value=1
		source "$1" || exit 9
		sem_init "$2/s" 1
		sem_wait "$2/s" 0.1
		sem_post "$2/s"
		sem_peek "$2/s"
		sem_destroy "$2/s"
		echo done
	' _ "$LIB" "$D"
	assert_success
	assert_equal "$stderr" ""
	assert_output $'1\ndone'
}

@test "lookup: sourced through a symlink, the helper beside the real file is found" {
	make_tree
	mkdir -p "$BATS_TEST_TMPDIR/links"
	ln -s "$T/sh/sem.sh" "$BATS_TEST_TMPDIR/links/sem.sh"
	PATH=/usr/bin:/bin in_bash "source '$BATS_TEST_TMPDIR/links/sem.sh'; sem_init \"\$D/s\" 4 && sem_peek \"\$D/s\" && sem_destroy \"\$D/s\""
	assert_success
	assert_output 4
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/log")" beside
}
