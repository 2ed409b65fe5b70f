# Thin wrapper: `make run` and `make test` do all set-up on a fresh Debian 12 machine.
# The real build is CMake (CMakeLists.txt); see README.md.

BUILD    ?= build
PORT     ?= 8080
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

# Build and runtime libraries, then what the tests use (curl for the HTTP tests; chromium
# and node for the web page's, tests/browser). npm is Debian's package unless an npm is
# already there (NodeSource's nodejs carries its own and conflicts with Debian's npm).
DEPS      = build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev \
            libsndfile1-dev libsoxr-dev libopenblas-dev libcriterion-dev \
            libavformat-dev libavcodec-dev libavutil-dev zlib1g-dev libwslay-dev nettle-dev
TEST_DEPS = curl jq libxml2-utils python3-yaml python3-numpy python3-torch librsvg2-bin procps \
            python3-websocket \
            chromium nodejs fonts-dejavu-core $(if $(shell command -v npm),,npm)

.PHONY: all deps build run install test test-asan test-deploy fuzz clean

all: build

deps:
	@tools/install-deps.sh $(DEPS)

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# `make run` builds the server alone (not the tests or benches), quietly: the compiler's
# output goes to $(BUILD)/run-build.log and is shown only when the build fails.
run: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@echo "building audioclass (log: $(BUILD)/run-build.log)"
	@cmake --build $(BUILD) --target audioclass -j $(JOBS) -- --no-print-directory >$(BUILD)/run-build.log 2>&1 \
	  || { cat $(BUILD)/run-build.log; exit 1; }
	@echo "serving models/ on http://localhost:$(PORT)/ (API: http://localhost:$(PORT)/openapi.json; Ctrl-C stops)"
	@echo "try:  curl -F file=@examples/dog.ogg \"http://localhost:$(PORT)/classify?model=envnet-esc50\""
	@exec $(BUILD)/audioclass serve --port $(PORT)

# Installs the binary into $(PREFIX)/bin and the models into $(PREFIX)/share/audioclass/models
# (where the installed binary looks for them). DESTDIR is honoured, for packaging.
PREFIX ?= /usr/local
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) --target audioclass -j $(JOBS) -- --no-print-directory >$(BUILD)/run-build.log 2>&1 \
	  || { cat $(BUILD)/run-build.log; exit 1; }
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --component audioclass

test: build
	@tools/install-deps.sh $(TEST_DEPS)
	@tests/browser/setup.sh
	cd $(BUILD) && ctest --output-on-failure

# Deployment checks, not in `make test` (they need root, nginx and the Debian mirror; see
# deploy/README.md): deploy/nginx.conf in front of three replicas, and the Dockerfile
# replayed in a debootstrapped Debian 12 root. Every script runs; any failure fails.
test-deploy: build
	@tools/install-deps.sh $(TEST_DEPS) nginx debootstrap
	@rc=0; for t in tests/deploy/test_*.sh; do echo "== $$t"; \
	  bash $$t $(BUILD)/audioclass . || rc=1; done; exit $$rc

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@tools/install-deps.sh $(TEST_DEPS)
	@tests/browser/setup.sh
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DAC_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure

# The hostile-input integration test with the server under valgrind memcheck (slow: a few
# minutes; not part of `make test`). Any valgrind error or definite/indirect leak fails it.
# Built without libavformat (AC_AV=OFF): valgrind cannot run libhwy's initialiser, which
# libavcodec loads (CMakeLists.txt); the WebM/M4A path is covered by ASan and the fuzzers.
test-valgrind: deps
	@tools/install-deps.sh $(TEST_DEPS) valgrind
	@cmake -S . -B $(BUILD)-valgrind -DCMAKE_BUILD_TYPE=Release -DAC_AV=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-valgrind -j $(JOBS) --target audioclass mkaudio
	tests/valgrind/run.sh $(BUILD)-valgrind

# Overload: far more requests than the queue holds (tests/stress/overload.sh).
test-stress: build
	@tools/install-deps.sh $(TEST_DEPS)
	OVERLOAD_CHECK_LATENCY=1 tests/stress/overload.sh $(BUILD)/audioclass .

# Soak: mixed valid and invalid traffic for SOAK_SECONDS; RSS and fds sampled into a CSV.
SOAK_SECONDS ?= 600
soak: build
	@tools/install-deps.sh $(TEST_DEPS)
	tests/stress/soak.sh $(BUILD)/audioclass . $(SOAK_SECONDS)

# libFuzzer harnesses (tests/fuzz), each run for FUZZ_SECONDS from the seed corpus.
FUZZ_SECONDS ?= 60
fuzz:
	@tools/install-deps.sh $(DEPS) clang libclang-rt-14-dev
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAC_FUZZ=ON -DAC_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS)
	tests/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD)-valgrind
