# SPDX-License-Identifier: MIT
# xenmq: one non-recursive Makefile.
#
#   make                 build everything into $(B)/
#   make test            unit tests (cmocka) and end-to-end tests (real mosquitto)
#   make asan            the same tests, built with ASan and UBSan
#   make fuzz            each libFuzzer target for FUZZ_TIME seconds (clang)
#   make bench           throughput, latency and memory against direct Mosquitto
#   make demo            a Dom0 and two DomUs, simulated on this machine
#   make test-xen        end-to-end scenarios on a real Xen booted in QEMU
#   make install         PREFIX, DESTDIR, SYSCONFDIR as usual
#
# WITH_XEN and WITH_UDEV are auto|yes|no: auto uses the library when
# pkg-config finds it, yes insists on it, no builds without it (e.g. macOS:
# make WITH_XEN=no WITH_UDEV=no).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
DESTDIR ?=

WITH_XEN ?= auto
WITH_UDEV ?= auto
B ?= build
CC ?= cc
AR ?= ar
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
LDFLAGS ?=
WERROR ?=
FUZZ_TIME ?= 60

VERSION := 0.1.0
SOMAJOR := 0

# ---- dependencies -----------------------------------------------------------

PKGS := libuv libmosquitto jansson zlib

have = $(shell $(PKG_CONFIG) --exists $(1) && echo yes || echo no)
# $(call want,NAME,SETTING,PKG): resolve auto|yes|no, failing on yes-but-missing.
want = $(if $(filter auto,$(2)),$(call have,$(3)),$(if $(filter yes,$(2)),$(if $(filter yes,$(call have,$(3))),yes,$(error $(1)=yes but pkg-config cannot find $(3))),no))

XEN := $(call want,WITH_XEN,$(WITH_XEN),xenstore)
UDEV := $(call want,WITH_UDEV,$(WITH_UDEV),libudev)
PKGS-yes :=
PKGS-$(XEN) += xenstore
PKGS-$(UDEV) += libudev
ALL_PKGS := $(PKGS) $(PKGS-yes)

MISSING := $(strip $(foreach p,$(PKGS) cmocka,$(if $(filter no,$(call have,$(p))),$(p))))

DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(ALL_PKGS))
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(ALL_PKGS))
# What libxenmq itself needs (the broker's jansson and the agent's xenstore are not its);
# libuv is public (xenmq.h includes uv.h), the others private.
LIB_PKGS := libuv libmosquitto zlib
LIB_PRIVATE_PKGS := libmosquitto zlib
LIB_LIBS := $(shell $(PKG_CONFIG) --libs $(LIB_PKGS))

WARN := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla \
	-Wshadow -Wpointer-arith -Wno-unused-parameter $(if $(WERROR),-Werror)
XCFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -fPIC \
	-fvisibility=hidden $(WARN) -Iinclude -I. $(DEP_CFLAGS) \
	-DXENMQ_SYSCONFDIR='"$(SYSCONFDIR)"' $(CFLAGS)
XLDFLAGS := $(LDFLAGS)

# ---- sources, by folder -----------------------------------------------------
# A backend is a file named *_xen.c / *_noxen.c (or *_udev.c / *_noudev.c);
# the Makefile picks one of each pair, the code registers it.

pick = $(if $(filter yes,$(2)),$(wildcard $(1)/*_$(3).c),$(wildcard $(1)/*_no$(3).c))
plain = $(filter-out %_xen.c %_noxen.c %_udev.c %_noudev.c,$(wildcard $(1)/*.c))
srcs = $(call plain,$(1)) $(call pick,$(1),$(XEN),xen) $(call pick,$(1),$(UDEV),udev)
obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

CORE_SRC := $(call srcs,topics) $(call srcs,bridge)
LIB_SRC := $(call srcs,clients/lib)
BROKER_SRC := $(filter-out broker/main.c,$(call srcs,broker))
AGENT_SRC := $(filter-out clients/agent/main.c,$(call srcs,clients/agent))
TOOLS_SHARED_SRC := $(wildcard clients/tools/client_shared.c)
PUB_SRC := clients/tools/pub_lines.c
TOOLS := $(patsubst clients/tools/%.c,%,$(wildcard clients/tools/xenmq-*.c))

CORE_A := $(B)/libxmqcore.a
BROKER_A := $(B)/libxmqbroker.a
AGENT_A := $(B)/libxmqagent.a
LIB_A := $(B)/libxenmq.a
LIB_SO := $(B)/libxenmq.so.$(SOMAJOR)

SBIN_PROGS := $(B)/xenmqd $(B)/xenmq-agent
BIN_PROGS := $(addprefix $(B)/,$(TOOLS))
PROGS := $(SBIN_PROGS) $(BIN_PROGS)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
# A test tool is one file, tests/tools/NAME.c, or a folder of them, tests/tools/NAME/*.c;
# either way the program is $(B)/tests/NAME.
TOOL_DIRS := $(sort $(patsubst tests/tools/%/,%,$(dir $(wildcard tests/tools/*/*.c))))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(B)/tests/%,$(wildcard tests/tools/*.c)) \
	$(addprefix $(B)/tests/,$(TOOL_DIRS))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

ALL_SRC := $(CORE_SRC) $(LIB_SRC) $(BROKER_SRC) broker/main.c $(AGENT_SRC) \
	clients/agent/main.c $(TOOLS_SHARED_SRC) $(PUB_SRC) $(wildcard clients/tools/xenmq-*.c)

.PHONY: all test unit e2e asan fuzz bench demo test-xen install uninstall clean check-deps deps
# Objects reached only through pattern rules are kept, so that a second make has nothing to do.
.SECONDARY:
.DEFAULT_GOAL := all

deps:
	scripts/deps.sh

ifneq ($(MISSING),)
# On a fresh machine: install what is missing (scripts/deps.sh, Debian
# packages), then do what was asked.
all test unit e2e asan fuzz bench demo test-xen install:
	@echo "pkg-config cannot find: $(MISSING); installing the dependencies first"
	scripts/deps.sh
	$(MAKE) $@
else

all: $(PROGS) $(LIB_A) $(LIB_SO) $(B)/libxenmq.pc

# ---- compile ----------------------------------------------------------------

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(CORE_A): $(call obj,$(CORE_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(BROKER_A): $(call obj,$(BROKER_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(AGENT_A): $(call obj,$(AGENT_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_A): $(call obj,$(LIB_SRC) $(CORE_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_SO): $(call obj,$(LIB_SRC) $(CORE_SRC))
	$(CC) -shared -Wl,-soname,libxenmq.so.$(SOMAJOR) $(XLDFLAGS) -o $@ $^ $(LIB_LIBS)
	ln -sf libxenmq.so.$(SOMAJOR) $(B)/libxenmq.so

# Made again at install time too: PREFIX may differ there from the build's.
PC_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|; s|@REQUIRES@|$(LIB_PRIVATE_PKGS)|'

$(B)/libxenmq.pc: clients/lib/libxenmq.pc.in Makefile
	$(PC_SUBST) $< > $@

$(B)/xenmqd: $(B)/obj/broker/main.o $(BROKER_A) $(CORE_A)
	$(CC) $(XLDFLAGS) -o $@ $^ $(DEP_LIBS)

$(B)/xenmq-agent: $(B)/obj/clients/agent/main.o $(AGENT_A) $(CORE_A)
	$(CC) $(XLDFLAGS) -o $@ $^ $(DEP_LIBS)

$(B)/xenmq-%: $(B)/obj/clients/tools/xenmq-%.o $(call obj,$(TOOLS_SHARED_SRC)) $(LIB_A)
	$(CC) $(XLDFLAGS) -o $@ $^ $(DEP_LIBS)

$(B)/xenmq-pub: $(B)/obj/clients/tools/xenmq-pub.o $(call obj,$(PUB_SRC) $(TOOLS_SHARED_SRC)) $(LIB_A)
	$(CC) $(XLDFLAGS) -o $@ $^ $(DEP_LIBS)

# ---- tests ------------------------------------------------------------------

CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

$(B)/tests/%: tests/unit/%.c $(BROKER_A) $(AGENT_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -o $@ $< $(BROKER_A) $(AGENT_A) $(LIB_A) \
		$(XLDFLAGS) $(DEP_LIBS) $(CMOCKA_LIBS)

$(B)/tests/%: tests/tools/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -MMD -MP -o $@ $< $(LIB_A) $(XLDFLAGS) $(DEP_LIBS) -lutil

# A tool made of a folder: its objects are compiled like the others, under $(B)/obj.
define TOOL_DIR_RULE
$(B)/tests/$(1): $(call obj,$(wildcard tests/tools/$(1)/*.c)) $(LIB_A)
	@mkdir -p $$(@D)
	$$(CC) $$(XLDFLAGS) -o $$@ $$^ $$(DEP_LIBS) -lutil
endef
$(foreach t,$(TOOL_DIRS),$(eval $(call TOOL_DIR_RULE,$(t))))

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do \
		echo "== $$t"; $$t || fail=1; done; exit $$fail

e2e: all $(TEST_TOOLS)
	tests/e2e/run.sh $(B)

test: all $(UNIT_TESTS) $(TEST_TOOLS)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory e2e

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan:
	$(MAKE) --no-print-directory B=build-asan CFLAGS="$(ASAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer needs clang; the project's objects are rebuilt with coverage.
FUZZ_CC ?= clang
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
FUZZ_B := build-fuzz
fuzz:
	@command -v $(FUZZ_CC) >/dev/null || scripts/deps.sh --fuzz
	$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) \
		CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" LDFLAGS="-fsanitize=address,undefined" \
		$(FUZZ_B)/libxmqbroker.a $(FUZZ_B)/libxenmq.a
	@mkdir -p $(FUZZ_B)/fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
		$(FUZZ_CC) -std=c11 -D_DEFAULT_SOURCE -Iinclude -I. $(DEP_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer \
			-o $(FUZZ_B)/fuzz/$$n $$f $(FUZZ_B)/libxmqbroker.a $(FUZZ_B)/libxenmq.a $(DEP_LIBS); \
	done
	tests/fuzz/run.sh $(FUZZ_B)/fuzz $(FUZZ_TIME)

bench: all $(TEST_TOOLS)
	tests/bench/run.sh $(B)

demo: all $(TEST_TOOLS)
	tests/demo/demo.sh $(B)

test-xen: all $(TEST_TOOLS)
	tests/xen/run.sh $(B)

# ---- install ----------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(DATADIR)/doc/xenmq/examples
	install -m 755 $(SBIN_PROGS) $(DESTDIR)$(SBINDIR)/
	install -m 755 $(BIN_PROGS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libxenmq.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libxenmq.so
	install -m 644 include/xenmq.h $(DESTDIR)$(INCLUDEDIR)/
	$(PC_SUBST) clients/lib/libxenmq.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libxenmq.pc
	cp -R conf/. $(DESTDIR)$(DATADIR)/doc/xenmq/examples/
	@if [ -d docs/man ]; then for m in docs/man/*.[1-8]; do s=$${m##*.}; \
		install -d $(DESTDIR)$(MANDIR)/man$$s; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done; fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(notdir $(SBIN_PROGS))) \
		$(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(BIN_PROGS))) \
		$(DESTDIR)$(LIBDIR)/libxenmq.a $(DESTDIR)$(LIBDIR)/libxenmq.so* \
		$(DESTDIR)$(INCLUDEDIR)/xenmq.h $(DESTDIR)$(LIBDIR)/pkgconfig/libxenmq.pc
	rm -rf $(DESTDIR)$(DATADIR)/doc/xenmq

endif

clean:
	rm -rf build build-asan build-fuzz

check-deps:
	@echo "xen: $(XEN)  udev: $(UDEV)  packages: $(ALL_PKGS)  missing: $(MISSING)"
