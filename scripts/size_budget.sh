#!/bin/sh
# scripts/size_budget.sh — the size budget: no source file in core/, cuda/ or
# lua/ over 800 lines (STYLE.md: files stay small, one idea a file). Prints every
# file over the budget and exits non-zero if there is one; also names the files
# past the 600-line mark, where a split is due, without failing.
# Usage: scripts/size_budget.sh [DIR...]   (default: core cuda lua)
# KBL_SIZE_LIMIT and KBL_SIZE_WARN change the two limits.
set -u
cd "$(dirname "$0")/.." || exit 1
limit="${KBL_SIZE_LIMIT:-800}"
warn="${KBL_SIZE_WARN:-600}"
[ "$#" -gt 0 ] || set -- core cuda lua

dirs=""
for dir in "$@"; do [ -d "$dir" ] && dirs="$dirs $dir"; done
[ -n "$dirs" ] || { echo "size budget: none of $* exists"; exit 0; }
# shellcheck disable=SC2086  # $dirs is a list of directory names
find $dirs -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.lua' \) \
   -exec wc -l {} + | sort -k2 | awk -v limit="$limit" -v warn="$warn" '
   $2 == "total" && NF == 2 { next }
   { n = $1; sub(/^ *[0-9]+ /, ""); checked++
     if (n > limit) { printf "%s: %d lines, over the budget of %d: split it\n", $0, n, limit; over++ }
     else if (n > warn) printf "%s: %d lines (note: past %d, a split is due soon)\n", $0, n, warn }
   END { printf "size budget: %d files checked, %d over %d lines\n", checked, over, limit; exit over > 0 }'
