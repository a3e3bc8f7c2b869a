#!/bin/sh
# bench/run_data.sh — the data pipeline benchmark: kbl (bench/data.lua) and a
# torch DataLoader (bench/data.py, started by it) on the Fashion-MNIST training
# split, in one run; prints batches per second and the ratios.
# KBL_BUILD_DIR picks the build tree (default build).
cd "$(dirname "$0")/.." || exit 1
build="${KBL_BUILD_DIR:-build}"
export KBL_BUILD_DIR="$build"
export KBL_LIB="${KBL_LIB:-$PWD/$build/libkbl.so}"
exec bin/kbl bench/data.lua
