# Thin wrapper over CMake. `make test` runs every test twice: in the normal
# build and under AddressSanitizer + UndefinedBehaviorSanitizer.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST      = ctest --output-on-failure -j $(JOBS)

.PHONY: all build asan-build test test-release asan demo install clean

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

# The main job: the example run twice; the second run finds the first's
# state at once.
demo: build
	rm -rf $(BUILD)/demo.mms
	@echo "== first run: creates the store"
	$(BUILD)/counter_list $(BUILD)/demo.mms
	@echo "== second run: a new process finds the list"
	$(BUILD)/counter_list $(BUILD)/demo.mms
	$(BUILD)/mms info $(BUILD)/demo.mms
	$(BUILD)/mms verify $(BUILD)/demo.mms

install:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
