# sem: counting semaphores for shell scripts.
#   make            build the release helper
#   make test       install what's missing, then run every test (cargo test + bats)
#   make demo       8 jobs throttled through a semaphore of 3 slots
#   make install    PREFIX=/usr/local DESTDIR=
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
CARGO   ?= cargo
HELPER  := target/release/semctl-helper
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: all build test deps lint cargo-test bats demo install uninstall clean

all: build

build:
	$(CARGO) build --release --locked

$(HELPER): build

# Debian's packages for the suites; installed only when missing.
deps:
	@missing=""; \
	command -v bats >/dev/null 2>&1 || missing="$$missing bats"; \
	[ -f /usr/lib/bats/bats-support/load.bash ] || missing="$$missing bats-support"; \
	[ -f /usr/lib/bats/bats-assert/load.bash ] || missing="$$missing bats-assert"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	command -v ipcs >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v setpriv >/dev/null 2>&1 || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	shellcheck -x sh/*.sh bats/*.bash demo/*.sh .ci/run

cargo-test: build
	$(CARGO) test --release --locked

# As root, the suites run in a private IPC namespace, where every test can check that it
# leaked no kernel set without seeing other processes' sets.
bats: build deps
	@if [ "$$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then \
		echo "bats: in a private IPC namespace"; \
		SEM_TEST_PRIVATE_IPC=1 unshare --ipc bats bats/; \
	else \
		bats bats/; \
	fi

test: deps build cargo-test lint bats

demo: build
	bash demo/throttle.sh

install: build
	install -D -m 0755 $(HELPER) $(DESTDIR)$(BINDIR)/semctl-helper
	install -D -m 0644 sh/sem.sh $(DESTDIR)$(BINDIR)/sem.sh

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/semctl-helper $(DESTDIR)$(BINDIR)/sem.sh

clean:
	$(CARGO) clean
