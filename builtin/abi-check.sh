#!/bin/bash
# Check builtin/src/sys.rs against bash's headers (Debian's bash-builtins, which `make
# deps` installs): compile abi-check.c against /usr/include/bash, run the Rust test that
# prints the same lines, and diff them. Also check that bash exports the data symbols the
# builtin reads, with at least the sizes it assumes, and the one function it calls
# (BASH_BINARY, default /bin/bash).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=/usr/include/bash
cc -I"$inc" -I"$inc/include" -I"$inc/builtins" -I/usr/lib/bash abi-check.c -o "$tmp/abi"
"$tmp/abi" >"$tmp/c.txt"
cargo test -q --locked --profile builtin -p sem-builtin abi_layout -- --nocapture 2>/dev/null |
	grep '^abi ' >"$tmp/rust.txt"
diff "$tmp/c.txt" "$tmp/rust.txt"
bash_binary=${BASH_BINARY:-/bin/bash}
want() { # SYMBOL MIN_SIZE
	local size
	size=$(nm -D -S "$bash_binary" | awk -v s="$1" '$4 == s { print $2 }')
	if [[ -z $size ]] || ((16#$size < $2)); then
		echo "abi: $bash_binary exports no $1 of $2 bytes or more"
		exit 1
	fi
}
want interrupt_state 4
want terminating_signal 4
# pending_traps[NSIG]: the builtin reads entries up to SIGTERM.
want pending_traps $((4 * 16))
# char *get_string_value(const char *), variables.h: SEM_VERBOSE's value.
syms=$(nm -D "$bash_binary")
if [[ $syms != *' T get_string_value'$'\n'* ]]; then
	echo "abi: $bash_binary exports no function get_string_value"
	exit 1
fi
grep -q 'get_string_value PARAMS((const char \*))' "$inc/variables.h" || {
	echo "abi: get_string_value is not char *(const char *) in $inc/variables.h"
	exit 1
}
echo "abi: builtin/src/sys.rs matches $("$bash_binary" --version | head -1)"
