# shellcheck shell=bash
# Keys on the test Redis server (SEM_REDIS_URL), for the leak checks of the Redis contract
# run (bats/contract/kind.bash) and the fleet tests (bats/fleet.bash). Every key of a
# semaphore NAME starts with "sem:{NAME}:", so a test's names, all sharing a prefix,
# are found with one scan.

# redis_cli ARGS...: redis-cli against the server in SEM_REDIS_URL.
redis_cli() {
	redis-cli -u "$SEM_REDIS_URL" "$@"
}

# redis_keys PREFIX: the keys of every name starting with PREFIX (letters, digits, '.',
# '_', '-': no glob characters), sorted, one a line.
redis_keys() {
	redis_cli --scan --pattern "sem:{$1*" | sort
}

# redis_key_suffixes NAME: NAME's keys without their "sem:{NAME}" head, sorted.
redis_key_suffixes() {
	redis_cli --scan --pattern "sem:{$1}*" | sed "s/^sem:{$1}//" | sort
}

# redis_clean PREFIX: destroy, through the helper, every name starting with PREFIX that
# has keys on the server; then delete whatever keys are left, printing those that would
# have stayed for good (no expiry, or one further off than a minute): they are leaks (a
# destroy must leave nothing behind). A key that expires on its own within a lease or
# so (a dead waiter's bell that a destroy rang) is no leak.
redis_clean() {
	local prefix=$1 name key ttl
	while IFS= read -r name; do
		[[ -n $name ]] || continue
		"$HELPER" destroy "redis:$name" >/dev/null 2>&1 || true
	done < <(redis_keys "$prefix" | sed -n 's/^sem:{\([^}]*\)}.*/\1/p' | sort -u)
	while IFS= read -r key; do
		[[ -n $key ]] || continue
		ttl=$(redis_cli pttl "$key")
		redis_cli del "$key" >/dev/null
		if [[ $ttl == -1 ]] || ((ttl > 60000)); then
			echo "$key"
		fi
	done < <(redis_keys "$prefix")
}
