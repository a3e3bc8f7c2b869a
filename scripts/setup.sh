#!/bin/sh
# scripts/setup.sh — everything a fresh Debian 12 machine needs, as root:
# installs the missing Debian packages, builds kbl, and runs the main example.
set -eu
cd "$(dirname "$0")/.."

# kbl needs no BLAS (oneDNN computes its products); libopenblas0-pthread is for
# PyTorch, bench/'s reference, which would otherwise get the reference BLAS
# (its recommends are not installed).
PACKAGES="build-essential cmake pkg-config luajit libluajit-5.1-dev lua-busted lua-argparse
  lua-dkjson lua-check libdnnl-dev libzstd-dev zlib1g-dev libstb-dev
  luarocks dataset-fashion-mnist python3-torch python3-torchvision libopenblas0-pthread python3-numpy chromium
  python3-onnx python3-venv
  clang libclang-rt-14-dev libomp-dev
  lua-ldoc lua-discount lua-posix lua-readline
  openmpi-bin libopenmpi-dev"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi

# One virtual environment for the Python packages that Debian does not ship,
# used by optional cross-checks in the specs (each skips, naming the package,
# when it is missing): onnxruntime (spec/onnx_export_spec.lua), tensorboard
# (spec/tensorboard_spec.lua reads the event files back with its
# EventAccumulator and hparams plugin), safetensors (spec/safetensors_spec.lua
# loads a file the package itself wrote). Specs find it at $KBL_VENV, else
# /opt/kbl-venv (H.venv_python in spec/helper.lua). Add a package to the pip
# line below rather than making a second environment. Debian's python3 makes
# it: a python3 found first on PATH (pyenv) would not match python3-venv.
KBL_VENV="${KBL_VENV:-/opt/kbl-venv}"
[ -x "$KBL_VENV/bin/python3" ] || /usr/bin/python3 -m venv "$KBL_VENV"
"$KBL_VENV/bin/pip" install --quiet --disable-pip-version-check onnxruntime tensorboard safetensors

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"

if [ "${KBL_SETUP_NO_EXAMPLE:-}" = "" ]; then
  if [ -f examples/fashion_mnist_mlp.lua ] && [ -f lua/kbl/commands/run.lua ]; then
    bin/kbl run examples/fashion_mnist_mlp.lua
  else
    bin/kbl examples/mlp_generated.lua
  fi
fi
