# The two commands: `make run` and `make test`. Both install what is missing
# (Debian packages), configure and build into build/.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
SHMQD_FLAGS ?=

.PHONY: all deps build run test clean

all: build

deps:
	@bash tools/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only what it runs: the daemon, and shmqctl beside it (not the tests and
# benchmarks, which `make test` and `make build` build).
run: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target shmqd shmqctl
	$(BUILD_DIR)/bin/shmqd $(SHMQD_FLAGS)

test: build
	@bash tools/install-test-deps.sh
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

clean:
	rm -rf $(BUILD_DIR)
