# tidegate — the two commands of the quick start are `make demo` and `make test`.
# Every target installs what it needs first (scripts/deps.sh is idempotent and fast when warm).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
SANITIZE ?= OFF
JOBS ?= $(shell nproc)
# The real llama.cpp server of ../shared (see tests/support/process.h): real-engine tests run
# when it is there and skip, saying why, when it is not.
LLAMA_SERVER := $(wildcard $(CURDIR)/../shared/engines/llama.cpp/bin/llama-server)
export TIDEGATE_LLAMA_SERVER ?= $(LLAMA_SERVER)
CMAKE_FLAGS ?=
# The fuzz build (clang, libFuzzer, ASan+UBSan) and how long each target runs.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 30
export FUZZ_SECONDS

.PHONY: all deps configure build test unit integration demo bench format format-check asan fuzz \
  fuzz-coverage clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DTIDEGATE_SANITIZE=$(SANITIZE) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# All suites: unit and integration tests (integration tests start real processes on 127.0.0.1).
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

integration: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L integration

demo: build
	bash scripts/demo.sh $(BUILD_DIR)/tidegate

bench: build
	bash benchmarks/run_all.sh $(BUILD_DIR)

asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug SANITIZE=ON

# Builds the fuzz targets with clang and runs each for FUZZ_SECONDS (fuzz/run.sh); fails on any
# finding. Locally: FUZZ_SECONDS=600 make fuzz; one target: FUZZ_TARGETS=sse make fuzz.
$(FUZZ_BUILD_DIR)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DTIDEGATE_FUZZ=ON

fuzz: deps $(FUZZ_BUILD_DIR)/build.ninja
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)
	bash fuzz/run.sh $(FUZZ_BUILD_DIR)

# llvm-cov's coverage of the parsers by the corpora (seeds and what `make fuzz` found); local.
fuzz-coverage: deps
	bash fuzz/coverage.sh $(FUZZ_BUILD_DIR)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR) build-asan $(FUZZ_BUILD_DIR) build-fuzz-cov
