#!/usr/bin/env bats
# The README's "Throttling CI jobs" recipes, run as written, so that the docs can't drift
# from what works. Each test takes the code block that follows a `<!-- recipe: NAME -->`
# line in README.md, exactly, and makes only these edits, each of which must match exactly
# one line (a README change that moves them fails here, loudly):
#   - `source sem.sh` becomes a source of this checkout's sh/sem.sh;
#   - the recipe's name (/tmp/test-shards, /tmp/build-lock) becomes one in this test's own
#     sticky, world-writable directory (a private /tmp);
#   - the line marked "# your test command" or "# your build command" becomes a stand-in
#     (bin/fake below) that logs, counts the stand-ins running at once, fails or lasts long
#     as the test needs.
# Everything else runs verbatim, as a bash script in a session of its own (setsid), so
# that "nothing the script started is left" can be checked on the whole session.
# Not run here: the build recipe's 10-minute timeout (it can't be shortened without
# editing the recipe; sem_run.bats covers -w and -E).

load test_helper

eval "helper_$(declare -f setup)"
setup() {
	helper_setup
	# A private /tmp for the names, and a directory for the stand-ins' logs that uid 65534
	# can write too.
	TMPD=$D/tmp
	RUN=$D/run
	mkdir -m 1777 "$TMPD"
	mkdir -m 0777 "$RUN" "$RUN/running"
	: >"$RUN/log"
	chmod 0666 "$RUN/log"
	SHARDS=$TMPD/test-shards
	LOCK=$TMPD/build-lock
	SESSIONS=()
}

eval "helper_$(declare -f teardown)"
teardown() {
	# A failed test may leave a recipe's processes behind: end every session it started
	# (by session id) before the helper's teardown checks for leaked sets.
	local sid
	for sid in "${SESSIONS[@]}"; do
		pkill -9 -s "$sid" 2>/dev/null || true
	done
	helper_teardown
}

# recipe_text NAME: the code block on the line after `<!-- recipe: NAME -->`, exactly.
recipe_text() {
	awk -v tag="<!-- recipe: $1 -->" '
		$0 == tag { found = 1; next }
		found == 1 && $0 != "```bash" { exit 2 }
		found == 1 { found = 2; next }
		found == 2 && $0 == "```" { found = 3; exit }
		found == 2 { print }
		END { if (found != 3) exit 2 }
	' "$REPO_ROOT/README.md" || fail "README.md has no \`\`\`bash block on the line after <!-- recipe: $1 -->"
}

# make_recipe RECIPE STANDIN OUT: write RECIPE (shards or build) to OUT with the three
# allowed edits, STANDIN being the line that replaces the "your ... command" line.
make_recipe() {
	local which=$1 standin=$2 out=$3 text line from to n_src=0 n_name=0 n_cmd=0
	case $which in
	shards) from=/tmp/test-shards to=$SHARDS ;;
	build) from=/tmp/build-lock to=$LOCK ;;
	hold) from=/tmp/db-slots to=$TMPD/db-slots ;;
	esac
	text=$(recipe_text "$which")
	while IFS= read -r line; do
		if [[ $line == 'source sem.sh' ]]; then
			printf 'source %q\n' "$REPO_ROOT/sh/sem.sh"
			n_src=$((n_src + 1))
		elif [[ $line =~ \#\ your\ ((test|build)\ )?command ]]; then
			printf '%s\n' "$standin"
			n_cmd=$((n_cmd + 1))
		else
			if [[ $line == *"$from"* ]]; then
				line=${line//"$from"/"$to"}
				n_name=$((n_name + 1))
			fi
			printf '%s\n' "$line"
		fi
	done <<<"$text" >"$out"
	if ((n_src != 1 || n_name != 1 || n_cmd != 1)); then
		fail "recipe $which: expected one 'source sem.sh', one $from and one 'your ... command' line; found $n_src, $n_name, $n_cmd"
	fi
	chmod 0644 "$out"
}

# write_fake SECONDS [FAILING...]: the stand-in command bin/fake ID. It prints "shard ID
# starts" (and "... done"), logs "start ID.UID N" (N: stand-ins running at that moment,
# itself included), "done ID.UID" or "signal SIG ID.UID" to $RUN/log, and lasts SECONDS;
# an ID among FAILING fails at once with status 3.
write_fake() {
	local secs=$1
	shift
	mkdir -p "$D/bin"
	{
		echo '#!/usr/bin/env bash'
		printf 'RUN=%q SECS=%q FAILING=%q\n' "$RUN" "$secs" " $* "
		cat <<'EOF'
id=$1 me=$1.$(id -u)
trap 'echo "signal TERM $me" >>"$RUN/log"; rm -f "$RUN/running/$me"; exit 143' TERM
trap 'echo "signal INT $me" >>"$RUN/log"; rm -f "$RUN/running/$me"; exit 130' INT
echo "shard $id starts"
: >"$RUN/running/$me"
echo "start $me $(ls "$RUN/running" | wc -l)" >>"$RUN/log"
if [[ $FAILING == *" $id "* ]]; then
	rm -f "$RUN/running/$me"
	echo "failed $me" >>"$RUN/log"
	exit 3
fi
{ sleep "$SECS"; } 2>/dev/null # no "Terminated" line from bash when a cancel kills it
rm -f "$RUN/running/$me"
echo "done $me" >>"$RUN/log"
echo "shard $id done"
EOF
	} >"$D/bin/fake"
	chmod 0755 "$D/bin" "$D/bin/fake"
	FAKE=$(printf %q "$D/bin/fake")
}

# start_recipe SCRIPT [PREFIX...]: run bash SCRIPT (through PREFIX, e.g. setpriv) in a
# session of its own, stdout and stderr to SCRIPT.out and SCRIPT.err; its pid, which is
# also its session id, in $!. bats runs us without job control, so our background jobs
# start with SIGINT ignored, and a shell that starts so can't trap it; a CI runner starts
# the script with SIGINT at its default, which env --default-signal restores.
start_recipe() {
	local script=$1
	shift
	setsid "$@" env --default-signal=INT bash "$script" \
		>"$script.out" 2>"$script.err" </dev/null 3>&- &
	SESSIONS+=("$!")
}

# finish PID SECONDS: wait until the recipe PID has ended, at most SECONDS, and put its
# exit status in $status (reap's).
finish() {
	local pid=$1
	poll "$2" gone "$pid"
	reap "$pid"
}

# log_count WORD: how many lines of $RUN/log start with WORD.
log_count() {
	grep -c "^$1 " "$RUN/log" || true
}

# log_has WORD N: $RUN/log has N lines starting with WORD.
log_has() {
	[[ $(log_count "$1") == "$2" ]]
}

# max_running: the most stand-ins any one of them saw running at once.
max_running() {
	awk '$1 == "start" && $3 > m { m = $3 } END { print m + 0 }' "$RUN/log"
}

# left SID: the processes still in session SID or carrying this test's directory in their
# command line, zombies aside (they run nothing; PID 1 reaps them in its own time).
left() {
	{
		ps -s "$1" -o pid=,stat=,args= 2>/dev/null
		pgrep -a -f -- "$D/" 2>/dev/null | while read -r pid args; do
			printf '%s %s %s\n' "$pid" "$(ps -o stat= -p "$pid" 2>/dev/null)" "$args"
		done
	} | awk '$2 !~ /^Z/' | sort -u
}

nothing_left() {
	[[ -z $(left "$1") ]]
}

# assert_all_gone SID SCRIPT: within 2 s nothing the recipe started is left, and a second
# later it still has printed and logged nothing more.
assert_all_gone() {
	local sid=$1 script=$2 sizes
	poll 2 nothing_left "$sid" || fail "left running: $(left "$sid")"
	sizes=$(wc -c <"$script.out")/$(wc -c <"$script.err")/$(wc -c <"$RUN/log")
	sleep 1
	assert_equal "$(left "$sid")" ""
	assert_equal "$(wc -c <"$script.out")/$(wc -c <"$script.err")/$(wc -c <"$RUN/log")" "$sizes"
}

# assert_value NAME N: NAME's counter is N.
assert_value() {
	assert_equal "$("$HELPER" peek "$1")" "$2"
}

@test "the README marks both recipes on the line before their code blocks" {
	run recipe_text shards
	assert_success
	assert_line 'set -euo pipefail'
	run recipe_text build
	assert_success
	assert_line --partial 'sem_run --init 1 --mode 0666 -w 600 -E 75'
}

@test "the recipes are shellcheck-clean as written" {
	command -v shellcheck >/dev/null || skip "shellcheck is not installed"
	local which
	for which in shards build hold; do
		# SC1091: `source sem.sh` is found on PATH at run time, not here. Warnings and
		# errors only: shellcheck's SC2317 "info" doesn't see functions called from traps.
		run --separate-stderr shellcheck -s bash -S warning -e SC1091 - <<<"$(recipe_text "$which")"
		assert_success
		assert_silent
	done
}

@test "shards: all six run, never more than 3 at once, and the job exits 0" {
	write_fake 1
	make_recipe shards "shard() { $FAKE \"\$1\"; }" "$D/shards.sh"
	start_recipe "$D/shards.sh"
	local pid=$!
	finish "$pid" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/shards.sh.err")" ""
	assert_equal "$(grep -c ' starts$' "$D/shards.sh.out")" 6
	assert_equal "$(grep -c ' done$' "$D/shards.sh.out")" 6
	assert_equal "$(log_count done)" 6
	assert_equal "$(max_running)" 3
	# Made on first use, with the recipe's value and mode.
	assert_value "$SHARDS" 3
	run "$HELPER" status --json "$SHARDS"
	assert_output --partial '"mode":"0666"'
	assert_all_gone "$pid" "$D/shards.sh"
}

@test "shards: failing shards don't stop the others; the job exits 1 naming them, and nothing runs on" {
	# Shards 2 and 5 fail at once while the others still run or wait: a script that
	# exited on the first failure would leave them running and printing after it.
	write_fake 1 2 5
	make_recipe shards "shard() { $FAKE \"\$1\"; }" "$D/shards.sh"
	start_recipe "$D/shards.sh"
	local pid=$!
	finish "$pid" 30
	assert_equal "$status" 1
	assert_equal "$(cat "$D/shards.sh.err")" "failed shards: 2 5"
	assert_equal "$(grep -c ' starts$' "$D/shards.sh.out")" 6
	assert_equal "$(log_count failed)" 2
	assert_equal "$(log_count done)" 4
	assert_all_gone "$pid" "$D/shards.sh"
	assert_value "$SHARDS" 3
}

# cancel_shards SIG STATUS: SIGNAL the script alone while 3 shards run and 3 wait.
cancel_shards() {
	local sig=$1 want=$2
	write_fake 30
	make_recipe shards "shard() { $FAKE \"\$1\"; }" "$D/shards.sh"
	start_recipe "$D/shards.sh"
	local pid=$!
	poll 10 log_has start 3
	wait_for_waiters "$SHARDS" 3
	kill -s "$sig" "$pid"
	finish "$pid" 10
	assert_equal "$status" "$want"
	assert_equal "$(cat "$D/shards.sh.err")" ""
	# The running ones got the signal; the waiting ones never started.
	assert_equal "$(log_count signal)" 3
	assert_equal "$(grep -c "^signal $sig " "$RUN/log")" 3
	assert_equal "$(log_count done)" 0
	assert_all_gone "$pid" "$D/shards.sh"
	assert_equal "$(log_count start)" 3
	assert_equal "$(grep -c ' starts$' "$D/shards.sh.out")" 3
	# Every slot came back.
	assert_value "$SHARDS" 3
}

@test "shards: SIGTERM to the script alone stops running shards, starts no more, exits 143" {
	cancel_shards TERM 143
}

@test "shards: SIGINT to the script alone stops running shards, starts no more, exits 130" {
	cancel_shards INT 130
}

@test "shards: a second uid's run while root's is in progress: both succeed, sharing 3 slots" {
	reachable_by_nobody
	write_fake 1
	make_recipe shards "shard() { $FAKE \"\$1\"; }" "$D/shards.sh"
	cp "$D/shards.sh" "$D/nobody.sh"
	start_recipe "$D/shards.sh"
	local root=$!
	poll 10 log_has start 3
	wait_for_waiters "$SHARDS" 3
	start_recipe "$D/nobody.sh" setpriv --reuid=65534 --regid=65534 --clear-groups --
	local nobody=$!
	finish "$root" 30
	assert_equal "$status" 0
	finish "$nobody" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/shards.sh.err")" ""
	assert_equal "$(cat "$D/nobody.sh.err")" ""
	assert_equal "$(grep -c '^done .*\.0$' "$RUN/log")" 6
	assert_equal "$(grep -c '^done .*\.65534$' "$RUN/log")" 6
	# Twelve shards of two users, never more than 3 at once.
	assert_equal "$(max_running)" 3
	run "$HELPER" status --json "$SHARDS"
	assert_output --partial '"owner":0,'
	assert_output --partial '"mode":"0666"'
	assert_all_gone "$root" "$D/shards.sh"
	assert_all_gone "$nobody" "$D/nobody.sh"
}

@test "shards: a name with mode 0600 keeps a second uid out: its run fails with one line saying why" {
	reachable_by_nobody
	sem_init "$SHARDS" 3
	write_fake 1
	make_recipe shards "shard() { $FAKE \"\$1\"; }" "$D/shards.sh"
	start_recipe "$D/shards.sh" setpriv --reuid=65534 --regid=65534 --clear-groups --
	local pid=$!
	finish "$pid" 10
	assert_equal "$status" 125
	assert_equal "$(cat "$D/shards.sh.out")" ""
	stderr=$(cat "$D/shards.sh.err")
	assert_stderr_one_line
	[[ ${stderr,,} == *"permission denied"* ]] || fail "expected 'permission denied' in: $stderr"
	assert_equal "$(log_count start)" 0
	assert_all_gone "$pid" "$D/shards.sh"
	assert_value "$SHARDS" 3
}

@test "build: builds and exits 0; a second build waits until the first has ended" {
	write_fake 1
	make_recipe build "build() { $FAKE \"build\$\$\"; }" "$D/build.sh"
	cp "$D/build.sh" "$D/second.sh"
	start_recipe "$D/build.sh"
	local first=$!
	poll 10 log_has start 1
	start_recipe "$D/second.sh"
	local second=$!
	wait_for_waiters "$LOCK" 1
	finish "$first" 30
	assert_equal "$status" 0
	finish "$second" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/build.sh.err" "$D/second.sh.err")" ""
	assert_equal "$(log_count done)" 2
	assert_equal "$(max_running)" 1
	assert_value "$LOCK" 1
	run "$HELPER" status --json "$LOCK"
	assert_output --partial '"mode":"0666"'
	assert_all_gone "$first" "$D/build.sh"
	assert_all_gone "$second" "$D/second.sh"
}

@test "build: SIGTERM stops a waiting build before it starts and a running one; both exit 143" {
	write_fake 30
	make_recipe build "build() { $FAKE \"build\$\$\"; }" "$D/build.sh"
	cp "$D/build.sh" "$D/second.sh"
	start_recipe "$D/build.sh"
	local first=$!
	poll 10 log_has start 1
	start_recipe "$D/second.sh"
	local second=$!
	wait_for_waiters "$LOCK" 1
	kill -s TERM "$second"
	finish "$second" 10
	assert_equal "$status" 143
	kill -s TERM "$first"
	finish "$first" 10
	assert_equal "$status" 143
	assert_equal "$(cat "$D/build.sh.err" "$D/second.sh.err")" ""
	assert_equal "$(log_count signal)" 1
	assert_all_gone "$first" "$D/build.sh"
	assert_all_gone "$second" "$D/second.sh"
	assert_equal "$(log_count start)" 1
	assert_value "$LOCK" 1
}

@test "build: a lock with mode 0600 keeps a second uid out: its run fails with one line saying why" {
	reachable_by_nobody
	sem_init "$LOCK" 1
	write_fake 1
	make_recipe build "build() { $FAKE \"build\$\$\"; }" "$D/build.sh"
	start_recipe "$D/build.sh" setpriv --reuid=65534 --regid=65534 --clear-groups --
	local pid=$!
	finish "$pid" 10
	assert_equal "$status" 125
	assert_equal "$(cat "$D/build.sh.out")" ""
	stderr=$(cat "$D/build.sh.err")
	assert_stderr_one_line
	[[ ${stderr,,} == *"permission denied"* ]] || fail "expected 'permission denied' in: $stderr"
	assert_equal "$(log_count start)" 0
	assert_all_gone "$pid" "$D/build.sh"
}

@test "the sem_hold recipe: two at once through 2 slots, a third waits; a killed job's slot comes back" {
	write_fake 1
	make_recipe hold "migrate() { $FAKE \"\$BASHPID\"; }" "$D/hold"
	local a b c
	start_recipe "$D/hold"
	a=$!
	start_recipe "$D/hold"
	b=$!
	start_recipe "$D/hold"
	c=$!
	finish "$a" 15
	assert_success
	finish "$b" 15
	assert_success
	finish "$c" 15
	assert_success
	assert_equal "$(log_count start)" 3
	assert_equal "$(max_running)" 2
	assert_value "$TMPD/db-slots" 2
	assert_all_gone "$a" "$D/hold"
	# A job killed with -9 while it holds: its slot is back as it dies.
	write_fake 30
	make_recipe hold "migrate() { $FAKE \"\$BASHPID\"; }" "$D/hold2"
	start_recipe "$D/hold2"
	a=$!
	poll 5 log_has start 4
	assert_value "$TMPD/db-slots" 1
	kill -9 "$a"
	pkill -9 -s "$a" 2>/dev/null || true
	poll 2 test "$("$HELPER" peek "$TMPD/db-slots")" = 2
}
