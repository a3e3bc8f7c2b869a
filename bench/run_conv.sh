#!/bin/sh
# bench/run_conv.sh — the convolution benchmark: kbl (bench/conv.lua) and PyTorch
# (bench/conv.py) run with the same environment, each part in its own process;
# prints each workload's kbl/PyTorch ratio and the training step's peak RSS.
# KBL_BUILD_DIR picks the build tree (default build).
cd "$(dirname "$0")/.." || exit 1
build="${KBL_BUILD_DIR:-build}"
export KBL_BUILD_DIR="$build"
export KBL_LIB="${KBL_LIB:-$PWD/$build/libkbl.so}"
exec bin/kbl bench/conv.lua
