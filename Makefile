# Thin wrapper over CMake.
#
#   make demo     parse Unicode's character database once, query it from new processes
#   make test     every test, in a release build and under ASan + UBSan (what CI runs)
#   make check    every test in the release build only: the quick edit loop
#
# Each of them first runs scripts/setup.sh, which installs missing Debian
# packages (as root) or prints the command to run. The wrapper is quiet:
# CMake's output shows only when it fails (or warns), and ctest prints one
# line per test program as it finishes.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST      = ctest --output-on-failure -j $(JOBS)
# Debian's interpreter, the one python3-numpy is installed for.
PYTHON     ?= /usr/bin/python3
SETUP      = scripts/setup.sh

MAKEFLAGS += --no-print-directory

.PHONY: all build asan-build test check test-release asan demo demo-counter ucd-data \
        bench bench-quick install clean setup soak soak-power fuzz fuzz-text

all: build

# configure DIR TYPE EXTRA: cmake -S . -B DIR, its output kept in
# DIR/cmake.log and shown only if it fails. build DIR LABEL: the same for
# the build; compiler warnings are shown even when it succeeds.
define configure
	@mkdir -p $(1)
	@cmake -S . -B $(1) -DCMAKE_BUILD_TYPE=$(2) $(3) $(CMAKE_FLAGS) >$(1)/cmake.log 2>&1 || \
	  { cat $(1)/cmake.log; echo "make: configuring $(1) failed (log: $(1)/cmake.log)"; exit 1; }
endef
define build
	@echo "== build $(2) in $(1)/"
	@cmake --build $(1) -j $(JOBS) >$(1)/build.log 2>&1 || \
	  { grep -v '^\[ *[0-9]*%\]' $(1)/build.log; echo "make: the build in $(1) failed (log: $(1)/build.log)"; exit 1; }
	@grep -A4 -i 'warning:' $(1)/build.log || true
endef

setup:
	@$(SETUP) test

build:
	$(call configure,$(BUILD),RelWithDebInfo)
	$(call build,$(BUILD),release)

asan-build:
	$(call configure,$(ASAN_BUILD),Debug,-DMMS_SANITIZE=ON)
	$(call build,$(ASAN_BUILD),debug + ASan + UBSan)

test-release: build
	@echo "== tests, release build"
	@cd $(BUILD) && $(CTEST)

asan: asan-build
	@echo "== tests, ASan + UBSan build"
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)

# What CI runs: both builds.
test: setup
	@$(MAKE) test-release
	@$(MAKE) asan

# The quick loop: one release build, no sanitizers.
check: setup
	@$(MAKE) test-release

# The main job: parse once, explore forever. The Unicode Character Database
# of Debian's unicode-data package is parsed into typed tables (always
# again, to show what parsing costs); then new processes only open the store
# and answer queries; then the verifier walks it.
UCD_DIR ?= /usr/share/unicode
demo: ucd-data
	@$(MAKE) build
	@rm -rf $(BUILD)/ucd.mms
	@echo "== parse once: $(UCD_DIR) into $(BUILD)/ucd.mms"
	$(BUILD)/ucd build $(BUILD)/ucd.mms $(UCD_DIR)
	@echo "== explore: a new process opens the store and answers"
	$(BUILD)/ucd query $(BUILD)/ucd.mms
	@echo "== and another"
	$(BUILD)/ucd query $(BUILD)/ucd.mms U+0041 U+00BD U+AC00 word:SNOWMAN
	$(BUILD)/mms verify $(BUILD)/ucd.mms
	@echo "== and from Python: a new interpreter, numpy views of the same tables"
	@if ls $(BUILD)/python/mmstore*.so >/dev/null 2>&1; then \
	  echo "PYTHONPATH=$(BUILD)/python $(PYTHON) python/ucd_explore.py $(BUILD)/ucd.mms"; \
	  PYTHONPATH=$(BUILD)/python $(PYTHON) python/ucd_explore.py $(BUILD)/ucd.mms; \
	else echo "(no Python binding in $(BUILD)/python: apt-get install python3-dev python3-numpy)"; fi

# The demo's data: Debian's unicode-data, installed by the set-up script
# unless UCD_DIR points elsewhere.
ucd-data:
	@if [ "$(UCD_DIR)" = /usr/share/unicode ]; then $(SETUP) demo; else $(SETUP) build; fi
	@test -r $(UCD_DIR)/UnicodeData.txt || { \
	  echo "make demo: $(UCD_DIR)/UnicodeData.txt is missing."; \
	  echo "  It is the Unicode Character Database (Debian package unicode-data);"; \
	  echo "  point UCD_DIR at a copy of it: make demo UCD_DIR=/path/to/ucd"; \
	  exit 1; }

# The first example: a counter and a linked list, run twice; the second run
# finds the first's state at once.
demo-counter: build
	@rm -rf $(BUILD)/demo.mms
	@echo "== first run: creates the store"
	$(BUILD)/counter_list $(BUILD)/demo.mms
	@echo "== second run: a new process finds the list"
	$(BUILD)/counter_list $(BUILD)/demo.mms
	$(BUILD)/mms info $(BUILD)/demo.mms
	$(BUILD)/mms verify $(BUILD)/demo.mms

# Benchmarks against LMDB, SQLite, libpmemobj, Boost.Interprocess and a
# malloc'd array (bench/README.md). Results: bench/results/latest.{md,csv,*.png}.
# Not part of make test. The peers are installed from Debian if missing; the
# build is reconfigured so their harnesses are built.
bench:
	bench/install-peers.sh
	$(call configure,$(BUILD),RelWithDebInfo)
	$(call build,$(BUILD),release with the peers' harnesses)
	python3 bench/run.py --build $(BUILD) --data $(BUILD)/bench-data
	@echo "== finding records by key, 10^7 records (bench/results/index.md)"
	bench/keyed.sh $(BUILD) $(BUILD)/bench-data/keyed | tee $(BUILD)/bench-keyed.jsonl
	@echo "== hot copy and compaction, a 1 GB store (bench/results/copy.md)"
	bench/copy.sh $(BUILD) $(BUILD)/bench-data/copy | tee $(BUILD)/bench-copy.md

# The same at small sizes, under a minute, to check the harness (results in
# $(BUILD)/bench-quick, not committed).
bench-quick:
	bench/install-peers.sh
	$(call configure,$(BUILD),RelWithDebInfo)
	$(call build,$(BUILD),release with the peers' harnesses)
	python3 bench/run.py --quick --build $(BUILD) --data $(BUILD)/bench-data --out $(BUILD)/bench-quick
	bench/copy.sh --quick $(BUILD) $(BUILD)/bench-data/copy | tee $(BUILD)/bench-quick/copy.md

# Soaks: the release build's tests $(1), MMS_SOAK times (10) the work make
# test gives them (the sanitizer build of make test runs less of some,
# tests/test.h). Not part of make test.
soak_run = cd $(BUILD)/tests && for t in $(1); do \
	  MMS_SOAK=$${MMS_SOAK:-10} MMS_GUARD=1 MMS_TEST_TMP=$(CURDIR)/$(BUILD)/tests/tmp \
	  MMS_TOOL=$(CURDIR)/$(BUILD)/mms ./$$t || exit 1; done

# Power-loss soak (tests/test_power.c): thousands of simulated power cuts.
soak-power: build
	$(call soak_run,test_power)

# Process soak (tests/test_crash.c, tests/test_multi.c, tests/test_review22.c):
# random kills, crash points, races and stress; and test_corrupt's random
# garbage. make test runs less of test_crash's random kills, test_multi's
# stress and test_corrupt's garbage than MMS_SOAK=1 would.
soak: build
	$(call soak_run,test_crash test_multi test_review22 test_corrupt)

# libFuzzer (clang) with ASan + UBSan over store images (fuzz/). New inputs
# go to $(FUZZ_BUILD)/corpus; fuzz/corpus replays under make test.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 600
fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DMMS_FUZZ=ON -DMMS_TESTS=OFF \
	  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-g -O1" $(CMAKE_FLAGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_store fuzz_seedgen
	rm -rf $(FUZZ_BUILD)/seeds && $(FUZZ_BUILD)/fuzz/fuzz_seedgen $(FUZZ_BUILD)/seeds >/dev/null
	mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	$(FUZZ_BUILD)/fuzz/fuzz_store -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=4096 \
	  -max_len=65536 -artifact_prefix=$(FUZZ_BUILD)/artifacts/ $(FUZZ_BUILD)/corpus \
	  $(FUZZ_BUILD)/seeds fuzz/corpus

# The same over the tool's text inputs (fuzz/fuzz_text.c: mms load's dumps,
# mms import's CSV); fuzz/corpus-text replays under make test.
fuzz-text:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DMMS_FUZZ=ON -DMMS_TESTS=OFF \
	  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-g -O1" $(CMAKE_FLAGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_text
	mkdir -p $(FUZZ_BUILD)/corpus-text $(FUZZ_BUILD)/artifacts-text $(FUZZ_BUILD)/tmp
	MMS_TEST_TMP=$(abspath $(FUZZ_BUILD))/tmp $(FUZZ_BUILD)/fuzz/fuzz_text -max_total_time=$(FUZZ_TIME) \
	  -timeout=20 -rss_limit_mb=4096 -close_fd_mask=2 -artifact_prefix=$(FUZZ_BUILD)/artifacts-text/ \
	  $(FUZZ_BUILD)/corpus-text fuzz/corpus-text

install:
	$(call configure,$(BUILD),RelWithDebInfo,-DCMAKE_INSTALL_PREFIX=$(PREFIX))
	$(call build,$(BUILD),release)
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
