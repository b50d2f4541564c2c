# Sub2API in C: one Makefile for every binary, test and script.
#
#   make                 build the six services and sub2apictl into build/bin
#   make test            start PostgreSQL/Redis if needed, run every suite
#   make SAN=address,undefined test   the same, sanitized (objects in build/san)
#   make fuzz            run each libFuzzer target FUZZ_SECONDS (default 60)
#   make run | up | down | status     the local stack (compose/local)
#   make fmt | fmt-check              clang-format with .clang-format
#
# Parallel-safe: every output has its own rule and directory prerequisite.
# Source lists are discovered, so a new module needs no Makefile edit:
# services/*.c and proto/*.c form two static libraries, <svc>/*.c one
# binary each, and every *_test.c one unit-test binary.

SHELL := /bin/bash
CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
SAN ?=
WERROR ?= $(if $(CI),1,)
FUZZ_SECONDS ?= 60

ifeq ($(SAN),)
O := build
else
O := build/san
endif
BIN := $(O)/bin
OBJ := $(O)/obj
TBIN := $(O)/test

PKGS := libmicrohttpd hiredis jansson libcurl libpq openssl msgpack
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
PKG_CFLAGS := -I/usr/include/hiredis -I/usr/include/postgresql
PKG_LIBS := -lmicrohttpd -lhiredis -ljansson -lcurl -lpq -lssl -lcrypto -lmsgpackc
endif

WARN := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wold-style-definition -Wpointer-arith -Wvla -Wwrite-strings -Wshadow \
	-Wdeclaration-after-statement -Wno-missing-field-initializers
ifneq ($(WERROR),)
WARN += -Werror
endif

OPT ?= -O2
CPPFLAGS += -D_GNU_SOURCE -Iservices -Iproto -Itests/unit $(PKG_CFLAGS)
CFLAGS += -std=c11 $(OPT) -g -fno-omit-frame-pointer $(WARN) -MMD -MP
LDLIBS += -lnng $(PKG_LIBS) -lpthread -lm
ifneq ($(SAN),)
CFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif

SERVICES := gateway scheduler billing opsmon alerter webui

# Library sources: everything in services/ and proto/ but tests.
SVC_SRC := $(filter-out %_test.c,$(wildcard services/*.c))
PROTO_SRC := $(filter-out %_test.c,$(wildcard proto/*.c))
SVC_OBJ := $(SVC_SRC:%.c=$(OBJ)/%.o)
PROTO_OBJ := $(PROTO_SRC:%.c=$(OBJ)/%.o)
LIBSVC := $(O)/lib/libsvc.a
LIBPROTO := $(O)/lib/libproto.a
LIBS := $(LIBPROTO) $(LIBSVC)

# Per-service objects; main.c is kept apart so tests can link the rest.
define svc_vars
$(1)_SRC := $$(filter-out %_test.c,$$(wildcard $(1)/*.c))
$(1)_OBJ := $$($(1)_SRC:%.c=$(OBJ)/%.o)
$(1)_LIBOBJ := $$(filter-out $(OBJ)/$(1)/main.o,$$($(1)_OBJ))
endef
$(foreach s,$(SERVICES),$(eval $(call svc_vars,$(s))))

CTL_SRC := $(filter-out %_test.c,$(wildcard tools/sub2apictl/*.c))
CTL_OBJ := $(CTL_SRC:%.c=$(OBJ)/%.o)
CTL_LIBOBJ := $(filter-out $(OBJ)/tools/sub2apictl/main.o,$(CTL_OBJ))

TEST_SRC := $(wildcard services/*_test.c proto/*_test.c tools/sub2apictl/*_test.c) \
	$(foreach s,$(SERVICES),$(wildcard $(s)/*_test.c))
TEST_BIN := $(foreach t,$(TEST_SRC),$(TBIN)/$(notdir $(t:%.c=%)))
T_OBJ := $(OBJ)/tests/unit/t.o

FUZZ_SRC := $(wildcard proto/fuzz/*_fuzz.c)
FUZZ_NAMES := $(notdir $(FUZZ_SRC:%.c=%))
REPLAY_BIN := $(foreach f,$(FUZZ_NAMES),$(TBIN)/replay_$(f))
# Test tools: the fake upstream (tests/fakeup/*.c) and tests/tools/<x>.c,
# each one binary in build/bin, linked with the libraries.
FAKEUP_SRC := $(filter-out %_test.c,$(wildcard tests/fakeup/*.c))
FAKEUP_OBJ := $(FAKEUP_SRC:%.c=$(OBJ)/%.o)
TOOLS_SRC := $(wildcard tests/tools/*.c)
# Benchmark tools: tests/bench/<x>.c, one binary each, like tests/tools.
BENCH_SRC := $(wildcard tests/bench/*.c)
TOOL_BIN := $(if $(FAKEUP_SRC),$(BIN)/sub2api-fakeup,) \
	$(foreach t,$(TOOLS_SRC) $(BENCH_SRC),$(BIN)/$(notdir $(t:%.c=%)))

BINS := $(foreach s,$(SERVICES),$(BIN)/sub2api-$(s)) $(BIN)/sub2apictl

.PHONY: all tests test test-unit test-integ fuzz fuzz-build fmt fmt-check \
	run up down status clean deps bench bench-quick bench-ttfb bench-billing
all: $(BINS) $(TOOL_BIN)

# On a fresh machine the first build installs the Debian packages (as
# root; otherwise it prints the apt-get command and stops).  The stamp
# keeps later builds from asking again.
DEPS_STAMP := build/.deps-ok
$(DEPS_STAMP): compose/local/packages.sh
	@bash -c '. compose/local/packages.sh && pkg_ensure $$PKG_BUILD $$PKG_RUN $$PKG_TEST'
	@mkdir -p $(@D) && touch $@

deps: $(DEPS_STAMP)

$(OBJ)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBSVC): $(SVC_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBPROTO): $(PROTO_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

define svc_rule
$(BIN)/sub2api-$(1): $$($(1)_OBJ) $(LIBS)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBS) $(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call svc_rule,$(s))))

$(BIN)/sub2apictl: $(CTL_OBJ) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(CTL_OBJ) $(LIBS) $(LDLIBS)

$(BIN)/sub2api-fakeup: $(FAKEUP_OBJ) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(FAKEUP_OBJ) $(LIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/tools/%.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/bench/%.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# A unit test links its own module's objects (a service's without main.o).
define test_rule
$(TBIN)/$(notdir $(1:%.c=%)): $(OBJ)/$(1:%.c=%.o) $(T_OBJ) $(2) $(LIBS)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $(OBJ)/$(1:%.c=%.o) $(T_OBJ) $(2) $(LIBS) $(LDLIBS)
endef
$(foreach t,$(wildcard services/*_test.c proto/*_test.c),$(eval $(call test_rule,$(t),)))
$(foreach t,$(wildcard tools/sub2apictl/*_test.c),$(eval $(call test_rule,$(t),$(CTL_LIBOBJ))))
$(foreach s,$(SERVICES),$(foreach t,$(wildcard $(s)/*_test.c),$(eval $(call test_rule,$(t),$($(s)_LIBOBJ)))))

# Fuzz corpora replay as plain regression tests (no libFuzzer needed).
$(TBIN)/replay_%: $(OBJ)/proto/fuzz/%.o $(OBJ)/tests/unit/fuzz_replay.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests: $(TEST_BIN) $(REPLAY_BIN) $(BINS) $(TOOL_BIN)

# The test entry point: sets up the databases, then every suite.
test: tests
	SAN="$(SAN)" O="$(O)" bash tests/run.sh

test-unit: tests
	SAN="$(SAN)" O="$(O)" SUITES=unit bash tests/run.sh

test-integ: tests
	SAN="$(SAN)" O="$(O)" SUITES=integ bash tests/run.sh

# libFuzzer builds use clang with their own object tree.
FUZZ_O := build/fuzz
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all $(WARN)
FUZZ_LIB_SRC := $(SVC_SRC) $(PROTO_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_O)/obj/%.o)

$(FUZZ_O)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_O)/bin/%: $(FUZZ_O)/obj/proto/fuzz/%.o $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_O)/bin/%)

# Benchmarks (not timed tests): figures for docs/PERFORMANCE.md.
# The whole suite (docs/PERFORMANCE.md, docs/performance.json), under 15
# minutes with its 10-minute soak; bench-quick: short cells and a 30 s
# soak, its page in build/bench/ so docs/ keeps the full run's figures.
bench: all
	bash tests/bench/perf.sh

bench-quick: all
	@mkdir -p build/bench
	CELL_S=3 SOAK_S=30 OUT_MD=build/bench/PERFORMANCE.md \
		OUT_JSON=build/bench/performance.json bash tests/bench/perf.sh

bench-ttfb: all
	bash tests/bench/ttfb.sh

bench-billing: all
	bash tests/bench/billing.sh

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz.sh $(FUZZ_NAMES)

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find services proto $(SERVICES) tools tests -name '*.[ch]')

fmt:
	clang-format -i $(C_FILES)

fmt-check:
	bash tools/check-format.sh

run: all
	bash compose/local/stack.sh run

up: all
	bash compose/local/stack.sh up

down:
	bash compose/local/stack.sh down

status:
	bash compose/local/stack.sh status

clean:
	rm -rf build

.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)
