# huitong — the two commands: `make run` and `make test`.
# Everything installs what it needs first (scripts/install-deps).
JOBS ?= 2
BUILD ?= build
ASAN ?= build-asan
DATA ?= demo-data

.PHONY: all deps build build-asan build-fuzz run test test-release test-asan bench soak fuzz fuzz-check clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DHT_SANITIZE=ON -DHT_DEFAULT_MODEL=OFF >/dev/null
	@cmake --build $(ASAN) -j$(JOBS)

run: build
	@scripts/demo $(BUILD)/huitong $(DATA)

# The whole suite in the release build (assertions on), then again under
# ASan+UBSan (the slow crash/model soak labels run in release only).
test: build build-asan build-fuzz
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS) -LE nosan
	@$(MAKE) --no-print-directory fuzz-check

# Every libFuzzer target explores for a bounded time (FUZZ_CHECK_SECONDS
# each) from the committed corpus; new inputs go to a scratch directory,
# so the run never changes the tree. A crash fails the test.
FUZZ_CHECK_SECONDS ?= 7
build-fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHT_SANITIZE=ON -DHT_LIBFUZZER=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzzers

fuzz-check: build-fuzz
	@for f in build-fuzz/fuzz_*; do n=$$(basename $$f); s=$$(mktemp -d); \
	  echo "fuzz-check: $$n for $(FUZZ_CHECK_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_CHECK_SECONDS) -max_len=65536 -print_final_stats=0 \
	    -artifact_prefix=$$s/ $$s tests/fuzz/corpus/$$n >$$s/log 2>&1 \
	    || { tail -40 $$s/log; echo "fuzz-check: $$n FAILED (artifacts in $$s)"; exit 1; }; \
	  grep -E "^Done [0-9]+ runs" $$s/log | tail -1; rm -rf $$s; done

bench: build
	@bench/run

soak: build
	@HT_SOAK=1 $(BUILD)/test_ledger_model
	@HT_SOAK=1 bash tests/integration/crash.sh

fuzz: build-fuzz
	@for f in build-fuzz/fuzz_*; do n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-60} -max_len=65536 tests/fuzz/corpus/$$n || exit 1; done

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
