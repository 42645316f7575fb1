# Thin wrapper over CMake. `make test` runs every test twice: in the normal
# build and under AddressSanitizer + UndefinedBehaviorSanitizer.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST      = ctest --output-on-failure -j $(JOBS)
# Debian's interpreter, the one python3-numpy is installed for.
PYTHON     ?= /usr/bin/python3

.PHONY: all build asan-build test test-release asan demo demo-counter ucd-data bench bench-quick install clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan-build:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMMS_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-release: build
	cd $(BUILD) && $(CTEST)

asan: asan-build
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)

test: test-release asan

# The main job: parse once, explore forever. The Unicode Character Database
# of Debian's unicode-data package is parsed into typed tables (always
# again, to show what parsing costs); then new processes only open the store
# and answer queries; then the verifier walks it.
UCD_DIR ?= /usr/share/unicode
demo: ucd-data build
	rm -rf $(BUILD)/ucd.mms
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

# The demo's data; make does not install packages.
ucd-data:
	@test -r $(UCD_DIR)/UnicodeData.txt || { \
	  echo "make demo: $(UCD_DIR)/UnicodeData.txt is missing."; \
	  echo "  It is the Unicode Character Database of the Debian package unicode-data:"; \
	  echo "  install it (sudo apt-get install unicode-data) and run make demo again,"; \
	  echo "  or point UCD_DIR at a copy of it: make demo UCD_DIR=/path/to/ucd"; \
	  exit 1; }

# The first example: a counter and a linked list, run twice; the second run
# finds the first's state at once.
demo-counter: build
	rm -rf $(BUILD)/demo.mms
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
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	python3 bench/run.py --build $(BUILD) --data $(BUILD)/bench-data

# The same at small sizes, under a minute, to check the harness (results in
# $(BUILD)/bench-quick, not committed).
bench-quick:
	bench/install-peers.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	python3 bench/run.py --quick --build $(BUILD) --data $(BUILD)/bench-data --out $(BUILD)/bench-quick

install:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
