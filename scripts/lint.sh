#!/bin/sh
# scripts/lint.sh — the static checks: luacheck over the Lua code (lua/, spec/,
# examples/, bench/ and the Lua files in bin/; rules in .luacheckrc), clang-tidy
# over core/ (rules, and the reason for every check left out, in .clang-tidy),
# and shellcheck over the shell scripts. Prints every finding and exits
# non-zero if there is one.
# Usage: scripts/lint.sh [lua] [c] [sh]   (default: all three)
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$#" -gt 0 ] || set -- lua c sh
status=0

lint_lua() {
   files="lua spec examples"
   for f in bench/*.lua bin/*; do
      [ -f "$f" ] || continue
      case "$f" in
         *.lua) files="$files $f" ;;
         *) head -n 1 "$f" | grep -q 'lua' && files="$files $f" ;;  # a Lua script by its #! line
      esac
   done
   # shellcheck disable=SC2086  # $files is a list of paths without spaces
   luacheck --no-color --quiet --codes $files || status=1
}

lint_c() {
   command -v clang-tidy >/dev/null || { echo "lint: clang-tidy is not installed"; status=1; return; }
   # clang-tidy reads the compile flags from a configured (not built) tree.
   build='build-lint'
   cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
      >"$build.log" 2>&1 || { cat "$build.log"; status=1; return; }
   rm -f "$build.log"
   # One file per process (see .clang-tidy), as many at a time as there are
   # cores; a finding in a header names the file whose analysis reached it.
   # shellcheck disable=SC2016  # the inner script expands its own arguments
   findings=$(find core -name '*.c' -print0 | xargs -0 -n 1 -P "$(nproc)" sh -c '
      clang-tidy --quiet -p "$1" "$2" 2>/dev/null | grep -E ": (warning|error): " |
         sed "s|^$PWD/||" | awk -v tu="$2" "index(\$0, tu \":\") == 1 { print; next } { print \$0 \" (reached from \" tu \")\" }"
      ' sh "$build" | sort -u)
   if [ -n "$findings" ]; then
      echo "$findings"
      echo "clang-tidy: $(echo "$findings" | wc -l) finding(s) in core/"
      status=1
   else
      echo "clang-tidy: core/ is clean ($(find core -name '*.c' | wc -l) files)"
   fi
}

lint_sh() {
   command -v shellcheck >/dev/null || { echo "lint: shellcheck is not installed"; status=1; return; }
   files=".ci/run scripts/*.sh"
   for f in bin/*; do head -n 1 "$f" | grep -q 'sh$' && files="$files $f"; done
   # shellcheck disable=SC2086
   if shellcheck -s sh -S warning -f gcc $files; then
      echo "shellcheck: clean"
   else
      status=1
   fi
}

for part in "$@"; do
   case "$part" in
      lua) lint_lua ;;
      c) lint_c ;;
      sh) lint_sh ;;
      *) echo "lint: unknown part '$part' (use lua, c or sh)"; exit 2 ;;
   esac
done
exit "$status"
