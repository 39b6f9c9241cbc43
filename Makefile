# huitong — the two commands: `make run` and `make test`.
# Everything installs what it needs first (scripts/install-deps).
JOBS ?= 2
BUILD ?= build
ASAN ?= build-asan
DATA ?= demo-data

.PHONY: all deps build build-asan run test test-release test-asan bench soak fuzz clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DHT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j$(JOBS)

run: build
	@scripts/demo $(BUILD)/huitong $(DATA)

# The whole suite in the release build (assertions on), then again under
# ASan+UBSan (the slow crash/model soak labels run in release only).
test: build build-asan
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS) -LE nosan

bench: build
	@bench/run

soak: build
	@HT_SOAK=1 $(BUILD)/test_ledger_model
	@HT_SOAK=1 bash tests/integration/crash.sh

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHT_SANITIZE=ON -DHT_LIBFUZZER=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@for f in build-fuzz/fuzz_*; do n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-60} -max_len=65536 tests/fuzz/corpus/$$n || exit 1; done

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
