#!/bin/sh
# scripts/doc.sh [OUT_DIR]: generates the API reference (HTML) with LDoc
# (Debian lua-ldoc) from the doc comments in lua/kbl and lua/kbl/blocks
# (docs/config.ld), plus a page of every config key written from the config
# schema by kbl.doc, so the reference cannot disagree with `kbl check`. The
# output goes to OUT_DIR (default build-doc/, git-ignored); it is not committed.
# Also prints how many public names still lack documentation (kbl doc --missing).
set -eu
cd "$(dirname "$0")/.."
out="${1:-build-doc}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
command -v ldoc >/dev/null || { echo "doc.sh: ldoc is missing (apt-get install lua-ldoc; scripts/setup.sh does)" >&2; exit 1; }
build="${KBL_BUILD_DIR:-build}"
mkdir -p "$out/topics"
# the config keys, from the schema (needs the built library: kbl.doc loads kbl)
KBL_BUILD_DIR="$build" bin/kbl scripts/doc_config.lua > "$out/topics/config.md"
# docs/config.ld with absolute paths, and the topics: the config keys and the guides in docs/
{
  sed "s|'\.\./|'$PWD/|g" docs/config.ld
  printf 'topics = {%s' "'$out/topics/config.md'"
  for g in docs/*.md; do [ -f "$g" ] && printf ", '%s'" "$PWD/$g"; done
  printf '}\n'
} > "$out/config.ld"
ldoc -c "$out/config.ld" -d "$out" . >"$out/ldoc.log" 2>&1 || { cat "$out/ldoc.log" >&2; exit 1; }
# "contains no items": a file whose functions have no doc comments yet (kbl doc --missing lists them)
warnings=$(grep -v '^reading\|^changing\|^output\|contains no items' "$out/ldoc.log" | grep -c . || true)
missing=$(KBL_BUILD_DIR="$build" bin/kbl doc --missing 2>/dev/null | wc -l)
echo "doc.sh: $out/index.html ($warnings LDoc warnings in $out/ldoc.log; $missing names undocumented: kbl doc --missing)"
