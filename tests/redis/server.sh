#!/usr/bin/env bash
# Throwaway redis-server instances for the tests, each one living in a directory of its
# own and stopped by the pid in that directory, so that a test never touches a server it
# didn't start (a system service on 6379, another run's server).
#
#   server.sh start DIR [--persist none|aof]
#       start redis-server on 127.0.0.1, on a free port, with its data, pidfile, log and
#       port in DIR; print the port once PING answers. The server runs in its own
#       session and outlives the caller. aof: appendfsync always, so that even a kill -9
#       loses nothing acknowledged; none (the default): no RDB, no AOF.
#   server.sh stop DIR      SIGTERM, SIGKILL after 5 s, wait until it is gone
#   server.sh kill9 DIR     SIGKILL (a crash), wait until it is gone
#   server.sh restart DIR   stop (if running), start again on the same port and with the
#                           same persistence mode
#   server.sh pid DIR       print the pid of DIR's server, if it is running
#   server.sh with CMD...   start a server in a fresh temporary directory, run CMD with
#                           SEM_REDIS_URL=redis://127.0.0.1:PORT, stop the server and
#                           remove the directory however CMD ends; exit with CMD's status
#
# Exit status: 0 on success; 1 with one line on stderr otherwise.

set -euo pipefail

prog=server.sh

die() {
	echo "$prog: $*" >&2
	exit 1
}

# pid_of DIR: the pid of DIR's server if that process is alive and is the redis-server
# started in DIR (its title names the port recorded there); else nothing, status 1. A
# stale pidfile whose pid was reused by another process is therefore never signalled.
pid_of() {
	local dir=$1 pid port cmdline
	[[ -r $dir/redis.pid && -r $dir/port ]] || return 1
	pid=$(<"$dir/redis.pid")
	port=$(<"$dir/port")
	[[ $pid =~ ^[0-9]+$ && $port =~ ^[0-9]+$ ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *redis-server*":$port"* ]] || return 1
	echo "$pid"
}

# wait_gone PID SECONDS: poll until PID is gone (or a zombie); 1 if it is still there.
wait_gone() {
	local pid=$1 limit=$2 i state
	for ((i = 0; i < limit * 50; i++)); do
		state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 0
		[[ $state == Z ]] && return 0
		sleep 0.02
	done
	return 1
}

# pick_port: a port nobody listens on, outside the kernel's ephemeral range (so that an
# outgoing connection can't be holding it), chosen at random to keep parallel runs apart.
pick_port() {
	local lo hi port
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	while :; do
		port=$((10000 + (RANDOM * 32768 + RANDOM) % 50000))
		((port >= lo && port <= hi)) && continue
		ss -Htln "sport = :$port" 2>/dev/null | grep -q . && continue
		echo "$port"
		return
	done
}

# launch DIR PORT PERSIST: start the server; 0 once PING answers from the process we
# started, 2 if it could not bind PORT (someone took it: the caller picks another), 1 on
# any other failure.
launch() {
	local dir=$1 port=$2 persist=$3 pid i j reply
	local -a args=(--bind 127.0.0.1 --port "$port" --dir "$dir"
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
		--daemonize no --protected-mode no --save '')
	case $persist in
	none) args+=(--appendonly no) ;;
	aof) args+=(--appendonly yes --appendfsync always) ;;
	esac
	rm -f "$dir/redis.pid"
	echo "$port" >"$dir/port"
	echo "$persist" >"$dir/persist"
	# setsid: a session of its own, so that the caller's job control, terminal or
	# process group signals don't reach it; no descriptor of the caller's stays open
	# (bats waits for its fd 3 to close).
	setsid redis-server "${args[@]}" </dev/null >>"$dir/redis.log" 2>&1 3>&- 4>&- 5>&- &
	pid=$!
	for ((i = 0; i < 500; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			if tail -n 20 "$dir/redis.log" | grep -qiE 'address already in use|could not create server tcp'; then
				return 2
			fi
			echo "$prog: redis-server exited at start; the end of $dir/redis.log:" >&2
			tail -n 5 "$dir/redis.log" >&2
			return 1
		fi
		# Ours, not whatever else might answer on that port.
		reply=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' |
			sed -n 's/^process_id://p') || true
		if [[ $reply == "$pid" ]]; then
			# The pidfile is written a moment after the listener opens.
			for ((j = 0; j < 250; j++)); do
				[[ -s $dir/redis.pid ]] && return 0
				sleep 0.02
			done
			echo "$pid" >"$dir/redis.pid"
			return 0
		fi
		sleep 0.02
	done
	kill -9 "$pid" 2>/dev/null || true
	echo "$prog: redis-server on port $port did not answer PING within 10 s" >&2
	return 1
}

cmd_start() {
	local dir=${1:-} persist=none port rc tries
	[[ -n $dir ]] || die "usage: start DIR [--persist none|aof]"
	shift
	while (($#)); do
		case $1 in
		--persist)
			[[ ${2:-} == none || ${2:-} == aof ]] || die "--persist takes none or aof, not '${2:-}'"
			persist=$2
			shift 2
			;;
		*) die "start: unknown option '$1'" ;;
		esac
	done
	command -v redis-server >/dev/null || die "redis-server is not installed (make deps installs it)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	if pid_of "$dir" >/dev/null; then
		die "a server started in $dir is already running (pid $(pid_of "$dir"))"
	fi
	for ((tries = 0; tries < 20; tries++)); do
		port=$(pick_port)
		rc=0
		launch "$dir" "$port" "$persist" || rc=$?
		case $rc in
		0)
			echo "$port"
			return 0
			;;
		2) continue ;;
		*) exit 1 ;;
		esac
	done
	die "no free port after 20 tries"
}

cmd_stop() {
	local dir=${1:?usage: stop DIR} pid
	pid=$(pid_of "$dir") || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! wait_gone "$pid" 5; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || die "redis-server $pid did not die"
	fi
	rm -f "$dir/redis.pid"
}

cmd_kill9() {
	local dir=${1:?usage: kill9 DIR} pid
	pid=$(pid_of "$dir") || die "no server of $dir is running"
	kill -KILL "$pid"
	wait_gone "$pid" 5 || die "redis-server $pid did not die"
	rm -f "$dir/redis.pid"
}

# restart keeps the port: clients reconnect to the same address. The port might be
# taken in the short gap; then this fails rather than move (the clients would not follow).
cmd_restart() {
	local dir=${1:?usage: restart DIR} port persist i rc
	[[ -r $dir/port && -r $dir/persist ]] || die "$dir holds no server's port and mode"
	port=$(<"$dir/port")
	persist=$(<"$dir/persist")
	cmd_stop "$dir"
	for ((i = 0; i < 50; i++)); do
		rc=0
		launch "$dir" "$port" "$persist" || rc=$?
		case $rc in
		0) return 0 ;;
		2) sleep 0.1 ;;
		*) exit 1 ;;
		esac
	done
	die "port $port stayed taken; cannot restart the server of $dir"
}

cmd_with() {
	local dir port rc=0
	(($#)) || die "usage: with CMD..."
	dir=$(mktemp -d "${TMPDIR:-/tmp}/sem-redis.XXXXXX")
	# shellcheck disable=SC2064 # expand $dir now: it is local
	trap "'$0' stop '$dir' || true; rm -rf '$dir'" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	port=$(cmd_start "$dir") || exit 1
	SEM_REDIS_URL=redis://127.0.0.1:$port "$@" || rc=$?
	return "$rc"
}

case ${1:-} in
start | stop | kill9 | restart | with)
	sub=$1
	shift
	"cmd_$sub" "$@"
	;;
pid)
	pid_of "${2:?usage: pid DIR}" || die "no server of ${2} is running"
	;;
*) die "usage: $prog start|stop|kill9|restart|pid DIR, or $prog with CMD..." ;;
esac
