#!/bin/sh
# scripts/fuzz.sh — runs every libFuzzer harness in fuzz/ (one per C reader:
# IDX plain and gzip, CSV, checkpoint, data cache) for SECONDS each, from its
# seed corpus in fuzz/corpus/<harness>/, after replaying the inputs kept in
# fuzz/regressions/<harness>/. Fails on any crash, leak or sanitizer report.
#
# Build: libkbl configured by the top-level CMakeLists.txt with clang, ASan +
# UBSan (KBL_SANITIZE) and libFuzzer's coverage (-fsanitize=fuzzer-no-link),
# without CUDA; each harness is one file compiled and linked against it.
# New inputs the fuzzer finds go to $build/corpus/<harness>/ (not the
# repository); a crashing input is saved as $build/crash/<harness>-crash-<sha1>:
# keep it in fuzz/regressions/<harness>/ once fixed.
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 60; CI runs it with 20)
# Environment: KBL_FUZZ_BUILD_DIR (default build-fuzz), KBL_FUZZ (harness
# names to run, default all), KBL_FUZZ_ARGS (more libFuzzer flags, e.g. -jobs=2).
# Last line: "N passed, N failed" (one per harness).
set -u
cd "$(dirname "$0")/.." || exit 1
secs="${1:-60}"
build="${KBL_FUZZ_BUILD_DIR:-build-fuzz}"
harnesses="${KBL_FUZZ:-idx idx_gz csv checkpoint cache}"

fail() { echo "fuzz: $*"; echo "0 passed, 1 failed"; exit 1; }
command -v clang >/dev/null || fail "clang is not installed (scripts/setup.sh installs it)"

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DKBL_SANITIZE=ON -DKBL_CUDA=OFF -DKBL_WERROR=OFF \
   -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >"$build.configure.log" 2>&1 ||
   { cat "$build.configure.log"; fail "configure failed"; }
rm -f "$build.configure.log"
log=$(cmake --build "$build" -j"$(nproc)" --target kbl 2>&1) || { echo "$log" | tail -n 40; fail "build failed"; }

flags="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
mkdir -p "$build/fuzz" "$build/crash"
for h in $harnesses; do
   [ -f "fuzz/$h.c" ] || fail "no harness fuzz/$h.c"
   # shellcheck disable=SC2086  # $flags is a list of options
   clang $flags -Icore "fuzz/$h.c" -o "$build/fuzz/$h" -L"$build" -lkbl -Wl,-rpath,"$PWD/$build" -lzstd -lz ||
      fail "cannot build fuzz/$h.c"
done

# The caching allocator keeps freed blocks poisoned in its lists: LeakSanitizer
# must look through them (use_poisoned), or every cached block reads as a leak.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:halt_on_error=1"
export LSAN_OPTIONS="use_poisoned=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OMP_NUM_THREADS=1

passed=0
failed=0
for h in $harnesses; do
   out="$build/fuzz/$h.log"
   ok=1
   # the kept crashing inputs first: each runs once and must pass
   if [ -d "fuzz/regressions/$h" ] && [ -n "$(ls -A "fuzz/regressions/$h")" ]; then
      "$build/fuzz/$h" fuzz/regressions/"$h"/* >"$out.regressions" 2>&1 ||
         { tail -n 40 "$out.regressions"; echo "fuzz: $h: a kept regression input fails again"; ok=0; }
   fi
   mkdir -p "$build/corpus/$h"
   # shellcheck disable=SC2086  # KBL_FUZZ_ARGS is a list of options
   if [ "$ok" = 1 ] && ! "$build/fuzz/$h" "$build/corpus/$h" "fuzz/corpus/$h" -max_total_time="$secs" \
      -max_len=4096 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
      -artifact_prefix="$build/crash/$h-" ${KBL_FUZZ_ARGS:-} >"$out" 2>&1; then
      tail -n 60 "$out"
      ok=0
   fi
   if [ "$ok" = 1 ]; then
      passed=$((passed + 1))
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
      cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$out" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
      echo "fuzz: $h: ${secs} s, ${runs:-?} runs, coverage ${cov:-?}, no crash"
   else
      failed=$((failed + 1))
      echo "fuzz: $h: FAILED (log $out; crashing inputs in $build/crash/)"
   fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
