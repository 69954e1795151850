# sem: counting semaphores for shell scripts.
#   make            build the release helper, the bash builtin, the helper's man pages and
#                   shell completions
#   make test       install what's missing, then run every test (cargo test, lint, bats,
#                   the contract suites once per kind, a benchmark smoke run)
#   make stress     long chaos and load runs (STRESS_SECONDS, default 600)
#   make bench      the benchmarks: docs/BENCH.md and docs/bench.svg
#   make fuzz       the fuzz targets, FUZZ_SECONDS each
#   make demo       8 jobs throttled through a semaphore of 3 slots
#   make demo-fleet 8 jobs on 3 simulated runners through 2 Redis slots, one runner killed
#   make install    PREFIX=/usr/local DESTDIR= (the helper, sem.sh and the builtin
#                   sem-builtin.so in BINDIR, man pages and bash, zsh and fish
#                   completions under DATADIR)
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
CARGO   ?= cargo
# The helper is linked statically (helper/static.toml says why); everything else the
# workspace builds is not, so that a cdylib member can be built.
# It is built for the host's triple named explicitly, so that the static flags reach only
# the target's code: build scripts and proc-macros (which the Redis client's URL parser
# uses) are built for the host, and a proc-macro can't be linked with +crt-static.
TRIPLE  := $(shell rustc -vV | sed -n 's/^host: //p')
STATIC  := --config $(CURDIR)/helper/static.toml
TARGET  := --target $(TRIPLE)
HELPER  := target/release/semctl-helper
# The bash builtin: built with a profile that unwinds (Cargo.toml), never static, and
# copied beside the helper under the name sem.sh looks for.
BUILTIN := target/release/sem-builtin.so
# gen-docs/ writes the man pages and completions here, laid out as under share/.
SHARE   := target/release/share
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: all build test deps deps-redis venv node-test lint cargo-test bats bats-contract demo demo-fleet install uninstall clean bench bench-smoke fuzz stress

all: build

# The pages and completions come from the helper's own cli.rs, through gen-docs (a
# package of its own, so that its dependencies never reach the helper).
build:
	$(CARGO) $(STATIC) build $(TARGET) --release --locked -p semctl-helper
	cp target/$(TRIPLE)/release/semctl-helper $(HELPER).new && mv -f $(HELPER).new $(HELPER)
	$(CARGO) build --profile builtin --locked -p sem-builtin
	install -m 0755 target/builtin/libsem_builtin.so $(BUILTIN)
	$(CARGO) run --release --locked --quiet -p sem-gen-docs -- $(SHARE)

$(HELPER): build

# Debian's packages for the suites; installed only when missing.
deps: deps-redis
	@missing=""; \
	command -v bats >/dev/null 2>&1 || missing="$$missing bats"; \
	[ -f /usr/lib/bats/bats-support/load.bash ] || missing="$$missing bats-support"; \
	[ -f /usr/lib/bats/bats-assert/load.bash ] || missing="$$missing bats-assert"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	command -v ipcs >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v setpriv >/dev/null 2>&1 || missing="$$missing util-linux"; \
	[ -f /usr/include/bash/builtins.h ] || missing="$$missing bash-builtins"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# redis-server for the Redis contract run and bats/fleet.bats, which start their own
# servers on free loopback ports (tests/redis/server.sh), and jq, which reads the
# helper's status --json there, and openssl, which makes redis.bats's TLS certificates.
# Debian's redis-server starts a system service on 6379
# when it can; the tests never use it, so it is stopped and disabled after the install.
deps-redis:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	command -v jq >/dev/null 2>&1 || missing="$$missing jq"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null || exit 1; \
		case $$missing in *redis-server*) \
			if [ -d /run/systemd/system ]; then \
				$(SUDO) systemctl disable --now redis-server >/dev/null 2>&1 || true; \
			else \
				$(SUDO) service redis-server stop >/dev/null 2>&1 || true; \
				$(SUDO) update-rc.d redis-server disable >/dev/null 2>&1 || true; \
			fi;; \
		esac; \
	fi

# The interop suites run their peers from private folders, made here only when missing:
# a virtualenv with sysv_ipc (bats/interop_python.bats) and posix_ipc
# (bats/interop_posix.bats), found through SEM_TEST_PYTHON, and koffi@2 for Node
# (interop_posix.bats), found through SEM_TEST_NODE_PATH. Without python3's venv, node,
# npm or the package indexes, those tests skip, saying why.
VENV := .venv-test
export SEM_TEST_PYTHON := $(CURDIR)/$(VENV)/bin/python
NODE_DIR := .node-test
export SEM_TEST_NODE_PATH := $(CURDIR)/$(NODE_DIR)/node_modules

venv:
	@if ! "$(SEM_TEST_PYTHON)" -c 'import sysv_ipc, posix_ipc' 2>/dev/null; then \
		echo "venv: installing sysv_ipc and posix_ipc into $(VENV)"; \
		"$(SEM_TEST_PYTHON)" -c '' 2>/dev/null || { rm -rf $(VENV); python3 -m venv $(VENV); }; \
		if ! $(VENV)/bin/pip install -q sysv_ipc posix_ipc; then \
			"$(SEM_TEST_PYTHON)" -c 'import sysv_ipc' 2>/dev/null || rm -rf $(VENV); \
			echo "venv: cannot install sysv_ipc and posix_ipc into $(VENV); the Python interop tests will skip"; \
		fi; \
	fi

node-test:
	@if ! NODE_PATH="$(SEM_TEST_NODE_PATH)" node -e "require('koffi')" 2>/dev/null; then \
		echo "node-test: installing koffi@2 into $(NODE_DIR)"; \
		if ! { command -v node >/dev/null && npm install --prefix $(NODE_DIR) --no-save \
			--no-audit --no-fund --loglevel=error koffi@2; }; then \
			rm -rf $(NODE_DIR); \
			echo "node-test: cannot install koffi@2 into $(NODE_DIR); the Node interop tests will skip"; \
		fi; \
	fi

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	shellcheck -x sh/*.sh bats/*.bash bats/contract/*.bash demo/*.sh bench/*.sh stress/*.sh tests/redis/*.sh tests/redis/*.bash .ci/run

cargo-test: build
	$(CARGO) $(STATIC) test $(TARGET) --release --locked -p sem -p semctl-helper
	$(CARGO) test --profile builtin --locked -p sem-builtin

# As root, the suites run in a private IPC namespace, where every test can check that it
# leaked no kernel set without seeing other processes' sets. They run twice: with the
# bash builtin (sem.sh's default) and with SEM_BUILTIN=0 (the helper for everything).
# Both runs happen even after one fails; the target fails if either did. The second run
# leaves out the suites whose every name is a POSIX or Redis one (BUILTIN_ONLY), which
# the builtin hands to the helper in either run (about 80 s: make test stays under 15
# minutes on 2 cores); `make bats BUILTIN_ONLY=` runs them twice too.
BUILTIN_MODES := on 0
BUILTIN_ONLY ?= fleet redis posix interop_posix
HELPER_RUN  := $(filter-out $(patsubst %,bats/%.bats,$(BUILTIN_ONLY)),$(sort $(wildcard bats/*.bats)))

bats: build deps venv node-test
	@failed=''; \
	for mode in $(BUILTIN_MODES); do \
		if [ "$$mode" = on ]; then b=; files=bats/; else b=$$mode; files="$(HELPER_RUN)"; fi; \
		if [ "$$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then \
			echo "bats: SEM_BUILTIN=$$b, in a private IPC namespace"; \
			SEM_BUILTIN=$$b SEM_TEST_PRIVATE_IPC=1 unshare --ipc bats $$files || failed="$$failed SEM_BUILTIN=$$b"; \
		else \
			echo "bats: SEM_BUILTIN=$$b"; \
			SEM_BUILTIN=$$b bats $$files || failed="$$failed SEM_BUILTIN=$$b"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "bats: failed with:$$failed"; exit 1; fi

# The fleet tests alone (bats/fleet.bats; `make bats` runs them too): simulated machines
# sharing semaphores on Redis servers that the file starts and stops itself. They need
# root (namespaces) and skip otherwise.
.PHONY: bats-fleet
bats-fleet: build deps
	@if [ "$$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then \
		SEM_TEST_PRIVATE_IPC=1 unshare --ipc bats --timing bats/fleet.bats; \
	else \
		bats --timing bats/fleet.bats; \
	fi

# The contract suites (bats/contract/): what every kind of semaphore promises, run once
# per kind in KINDS (SEM_TEST_KIND): System V as root in a private IPC namespace, as the
# bats target runs it, then POSIX (/dev/shm is no IPC namespace's), then Redis, on a
# server of its own (tests/redis/server.sh with: a free loopback port, stopped by pid
# however the run ends). System V runs with the builtin and with SEM_BUILTIN=0; the other
# kinds, which the builtin hands to the helper, once (through that hand-over). Every run
# happens, even after one fails; the target fails if any did.
KINDS ?= sysv posix redis

bats-contract: build deps
	@failed=''; \
	for mode in $(BUILTIN_MODES); do \
	if [ "$$mode" = on ]; then b=; else b=$$mode; fi; \
	for kind in $(KINDS); do \
		if [ "$$mode" != on ] && [ "$$kind" != sysv ]; then continue; fi; \
		echo "bats-contract: SEM_TEST_KIND=$$kind SEM_BUILTIN=$$b"; \
		if [ "$$kind" = sysv ] && [ "$$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then \
			SEM_BUILTIN=$$b SEM_TEST_KIND=$$kind SEM_TEST_PRIVATE_IPC=1 unshare --ipc bats bats/contract/ || failed="$$failed $$kind/SEM_BUILTIN=$$b"; \
		elif [ "$$kind" = redis ]; then \
			SEM_TEST_KIND=$$kind tests/redis/server.sh with bats bats/contract/ || failed="$$failed $$kind"; \
		else \
			SEM_BUILTIN=$$b SEM_TEST_KIND=$$kind bats bats/contract/ || failed="$$failed $$kind/SEM_BUILTIN=$$b"; \
		fi; \
	done; \
	done; \
	if [ -n "$$failed" ]; then echo "bats-contract: failed for:$$failed"; exit 1; fi

test: deps build cargo-test lint bats bats-contract bench-smoke

demo: build
	bash demo/throttle.sh

# As root (each runner gets its own namespaces), with redis-server (deps-redis).
demo-fleet: build deps-redis
	bash demo/fleet.sh

install: build
	install -D -m 0755 $(HELPER) $(DESTDIR)$(BINDIR)/semctl-helper
	install -D -m 0644 sh/sem.sh $(DESTDIR)$(BINDIR)/sem.sh
	install -D -m 0755 $(BUILTIN) $(DESTDIR)$(BINDIR)/sem-builtin.so
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(SHARE)/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -D -m 0644 $(SHARE)/bash-completion/completions/semctl-helper \
		$(DESTDIR)$(BASHCOMPDIR)/semctl-helper
	install -D -m 0644 $(SHARE)/zsh/site-functions/_semctl-helper \
		$(DESTDIR)$(ZSHCOMPDIR)/_semctl-helper
	install -D -m 0644 $(SHARE)/fish/vendor_completions.d/semctl-helper.fish \
		$(DESTDIR)$(FISHCOMPDIR)/semctl-helper.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/semctl-helper $(DESTDIR)$(BINDIR)/sem.sh $(DESTDIR)$(BINDIR)/sem-builtin.so
	rm -f $(DESTDIR)$(MANDIR)/man1/semctl-helper.1 $(DESTDIR)$(MANDIR)/man1/semctl-helper-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/semctl-helper $(DESTDIR)$(ZSHCOMPDIR)/_semctl-helper \
		$(DESTDIR)$(FISHCOMPDIR)/semctl-helper.fish

clean:
	$(CARGO) clean

# Benchmarks (bench/run.sh): sem against the spawn floor, flock and GNU parallel's sem,
# all in one interleaved run, then Redis names against System V. `bench` installs
# gnuplot-nox, parallel and time if missing (redis-server through deps-redis) and writes
# docs/BENCH.md and docs/bench.svg (about 4 minutes); `bench-smoke` checks in under 30 s
# that the benchmark runs and the ratios stay within generous bounds.
bench: build deps-redis
	bash bench/run.sh

bench-smoke: build
	bash bench/run.sh --smoke

# Fuzzing (fuzz/, a crate of its own): each target runs for FUZZ_SECONDS under libFuzzer
# (cargo-fuzz, installed if missing). cargo-fuzz's sanitizer flags are nightly-only;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Prints the executions and
# crashes per target; a crash's input is saved in fuzz/artifacts/TARGET/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= record record_fields value count timeout mode name

fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build
	@cd fuzz && mkdir -p logs && failed=''; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t; \
		seeds=''; [ -d seeds/$$t ] && seeds=seeds/$$t; \
		dict=''; [ -f dicts/$$t.dict ] && dict=-dict=dicts/$$t.dict; \
		rc=0; RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t $$seeds -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 $$dict >logs/$$t.log 2>&1 || rc=$$?; \
		runs=$$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' logs/$$t.log); \
		if [ $$rc = 0 ]; then \
			echo "fuzz $$t: $${runs:-?} executions in $(FUZZ_SECONDS) s, 0 crashes"; \
		else \
			failed="$$failed $$t"; \
			echo "fuzz $$t: FAILED (exit $$rc) after $${runs:-?} executions; see fuzz/logs/$$t.log"; \
			grep -m1 -E 'panicked at|ERROR: ' logs/$$t.log || true; \
			grep -m1 -E 'Test unit written to' logs/$$t.log || true; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed"; exit 1; fi

# Stress (stress/chaos.sh, bats/load.bats): random SIGKILL, SIGTERM, SIGINT and
# SIGSTOP/SIGCONT against sem_run and wait/post workers for STRESS_SECONDS, then the
# long load run: 2000 sleeping waiters, and 8 workers x 5000 rounds through one slot
# (a few minutes). Prints each run's summary. `make test` runs short versions of both.
# Then stress/chaos-redis.sh: 3 simulated machines on one Redis name for
# REDIS_STRESS_SECONDS, with holders, commands, waiters and client connections killed.
STRESS_SECONDS ?= 600
REDIS_STRESS_SECONDS ?= 60

stress: build deps
	bash stress/chaos.sh $(STRESS_SECONDS)
	bash stress/chaos-redis.sh $(REDIS_STRESS_SECONDS)
	@if [ "$$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then \
		SEM_LOAD_WAITERS=2000 SEM_LOAD_ROUNDS=5000 SEM_TEST_PRIVATE_IPC=1 unshare --ipc bats --timing bats/load.bats; \
	else \
		SEM_LOAD_WAITERS=2000 SEM_LOAD_ROUNDS=5000 bats --timing bats/load.bats; \
	fi
