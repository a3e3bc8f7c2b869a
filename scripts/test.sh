#!/bin/sh
# scripts/test.sh — runs every test: the C tests under ctest and the busted
# specs, then prints one line "N passed, N failed". Builds first if needed.
# KBL_BUILD_DIR selects another build tree (the sanitizer build uses it).
set -u
cd "$(dirname "$0")/.." || exit 1
build="${KBL_BUILD_DIR:-build}"

if [ ! -f "$build/libkbl.so" ] || [ -n "${KBL_REBUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${KBL_CMAKE_ARGS:-} >/dev/null || exit 1
fi
cmake --build "$build" -j"$(nproc)" >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

# C tests
ctest_out=$(cd "$build" && ctest --output-on-failure 2>&1)
echo "$ctest_out" | tail -n 5
c_total=$(echo "$ctest_out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p')
c_failed=$(echo "$ctest_out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p')
if [ -n "$c_total" ]; then
  passed=$((passed + c_total - c_failed))
  failed=$((failed + c_failed))
fi

# busted specs (one process per spec file keeps a crash local to its file)
for spec in ${KBL_SPECS:-spec/*_spec.lua}; do
  out=$(KBL_BUILD_DIR="$build" busted -o utfTerminal "$spec" 2>&1)
  summary=$(echo "$out" | grep -E '[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' | tail -n 1)
  if [ -z "$summary" ]; then
    echo "$out" | tail -n 30
    echo "FAILED: $spec did not complete"
    failed=$((failed + 1))
    continue
  fi
  s=$(echo "$summary" | sed -n 's/^\([0-9]*\) success.*/\1/p')
  f=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failures\{0,1\} .*/\1/p')
  e=$(echo "$summary" | sed -n 's/.* \([0-9]*\) errors\{0,1\} .*/\1/p')
  passed=$((passed + s))
  failed=$((failed + f + e))
  if [ "$((f + e))" -gt 0 ]; then echo "$out" | tail -n 60; fi
  echo "$spec: $summary"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
