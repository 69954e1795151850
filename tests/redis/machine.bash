# shellcheck shell=bash
# Simulated machines for the demo and the chaos run outside bats (demo/fleet.sh,
# stress/chaos-redis.sh): each is an `unshare --ipc --uts --pid --fork` whose child runs
# the script again with MARKER (--runner, --machine) among its arguments.
# (bats/fleet.bash keeps its own machines, with bats' bookkeeping.)

# machine_first UNSHARE_PID MARKER: the machine's first process, the child of its unshare
# whose arguments hold MARKER; SIGKILL to it kills every process of the machine at once.
machine_first() {
	local c kids=()
	{ read -ra kids <"/proc/$1/task/$1/children"; } 2>/dev/null
	for c in "${kids[@]}"; do
		if [[ $(tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null) == *" $2 "* ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
