#!/bin/sh
# bench/startup.sh: start-up time and peak RSS of kbl against `/usr/bin/python3 -c
# "import torch"`: `kbl info` (which probes CUDA: it reports the devices),
# the same with KBL_NO_CUDA=1, a script that only requires kbl (through bin/kbl
# and from plain LuaJIT), `kbl --help`, and a one-step `kbl run` of a tiny
# generated-data config; PyTorch's import, and its import plus one training
# step of the same MLP. Wall seconds and max RSS (GNU time), the median of
# $RUNS runs (default 5). KBL_BUILD_DIR picks the build tree.
set -eu
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
build="${KBL_BUILD_DIR:-build}"
export KBL_BUILD_DIR="$build"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "local kbl = require 'kbl'" > "$tmp/require.lua"
cat > "$tmp/tiny.lua" <<'LUA'
return {extends = 'fit', epochs = 1, steps_per_epoch = 1, batch_size = 16, validation_split = false,
   data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3},
   model = blocks.MLP{units = {8, 3}, activate_last = false}}
LUA
cat > "$tmp/torch_step.py" <<'PY'
import torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
opt = torch.optim.Adam(m.parameters(), 1e-3)
x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
loss = torch.nn.functional.cross_entropy(m(x), y)
opt.zero_grad(); loss.backward(); opt.step()
PY
lua_path="$PWD/lua/?.lua;$PWD/lua/?/init.lua;$PWD/$build/lua/?.lua;;"

# median wall seconds and max RSS (MiB) of a command over $RUNS runs
measure() {
  label="$1"; shift
  : > "$tmp/times"
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    /usr/bin/time -f '%e %M' -o "$tmp/one" "$@" > /dev/null 2>&1 || { echo "$label: failed: $*" >&2; return 1; }
    cat "$tmp/one" >> "$tmp/times"
    i=$((i + 1))
  done
  sort -n "$tmp/times" | awk -v label="$label" -v n="$RUNS" '
    { t[NR] = $1; r[NR] = $2 }
    END { m = int((n + 1) / 2); printf "%-42s %8.0f ms %8.1f MiB\n", label, t[m] * 1000, r[m] / 1024 }'
}

echo "start-up, median of $RUNS runs (wall, max RSS); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure 'kbl info' bin/kbl info
measure 'KBL_NO_CUDA=1 kbl info' env KBL_NO_CUDA=1 bin/kbl info
measure 'kbl --help' bin/kbl --help
measure 'kbl SCRIPT (require kbl only)' bin/kbl "$tmp/require.lua"
measure "luajit -e \"require 'kbl'\"" env LUA_PATH="$lua_path" KBL_LIB="$PWD/$build/libkbl.so" luajit -e "require 'kbl'"
measure 'kbl run (one step, tiny MLP)' sh -c "rm -rf '$tmp/run' && exec bin/kbl run '$tmp/tiny.lua' --quiet --run-dir '$tmp/run'"
measure 'python3 -c "import torch"' /usr/bin/python3 -c 'import torch'
measure 'python3 torch one step (same MLP)' /usr/bin/python3 "$tmp/torch_step.py"
