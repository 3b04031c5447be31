# nfsv3driver: `make run` builds and starts the driver on development defaults,
# `make test` builds and passes every test. Both install missing Debian packages
# first (`make deps`, `make test-deps`); `make` and `make install` only build.
# Each directory contributes its own fragment (driver/driver.mk, ...); this file
# holds only what they share.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
BASE_CFLAGS = -std=gnu11 -D_GNU_SOURCE -Iinclude $(WARNINGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2
PKG_CONFIG ?= pkg-config
# The operator policy file the mount helper reads (include/policy.h); fixed at
# build time so that the unprivileged daemon cannot choose another.
POLICY_FILE ?= /etc/nfsv3driver/policy
BASE_CFLAGS += -DNFSV3_POLICY_FILE='"$(POLICY_FILE)"'

# WERROR=1 (CI: .ci/run) makes every compiler and linker warning an error;
# a plain build only warns, so another compiler's new warnings break no one.
WERROR ?=
ifneq ($(WERROR),)
override CFLAGS += -Werror
override LDFLAGS += -Wl,--fatal-warnings
endif

BIN_DIR = $(BUILD)/bin
HELPER_DIR = $(BUILD)/$(NFSV3_HELPER_SUBDIR)
NFSV3_HELPER_SUBDIR = libexec/nfsv3driver

# Filled in by the fragments.
ALL_TARGETS :=
INSTALL_BINS :=
INSTALL_HELPERS :=
TEST_TARGETS :=

.PHONY: all deps test-deps run test install clean
all: $(BUILD)/.built

include driver/driver.mk
include mounter/mounter.mk
include tools/tools.mk
-include bench/bench.mk
include test/test.mk

$(BUILD)/.built: $(ALL_TARGETS)
	@touch $@

# Packages are installed only when missing, so a prepared machine pays nothing.
deps:
	@packaging/deps.sh build

test-deps: deps
	@packaging/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	@test/dev-run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/$(NFSV3_HELPER_SUBDIR)
	install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(INSTALL_HELPERS) $(DESTDIR)$(PREFIX)/$(NFSV3_HELPER_SUBDIR)/

clean:
	rm -rf $(BUILD)
