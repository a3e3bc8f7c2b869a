#!/bin/sh
# bench/dist.sh — data-parallel scaling on this machine (issue 16): the MLP and
# CNN examples on 1 and 2 processes of 1 thread each (samples/s of the global
# batch, scaling efficiency = samples/s at 2 / (2 x samples/s at 1)), the
# gradient wait after backward with the buckets started during backward and
# without (KBL_DIST_OVERLAP=0), and kbl.dist.all_reduce against Open MPI's own
# MPI_Allreduce (bench/dist_allreduce.c) and PyTorch's (gloo,
# bench/dist_allreduce.py) for the same float32 sizes, on loopback TCP. Needs Open MPI (openmpi-bin, libopenmpi-dev).
#   KBL_BUILD_DIR=build-x STEPS=40 sh bench/dist.sh     (PARTS=allreduce: the all-reduce part only)
set -eu
cd "$(dirname "$0")/.."
export KBL_BUILD_DIR="${KBL_BUILD_DIR:-build}"
steps="${STEPS:-40}"
parts="${PARTS:-train allreduce}"
command -v mpirun >/dev/null || { echo "bench/dist.sh: needs mpirun (install openmpi-bin libopenmpi-dev)"; exit 1; }
root=""
[ "$(id -u)" = 0 ] && root="--allow-run-as-root"
mpi="mpirun $root --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
export OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
bin/kbl info | sed -n '3p;6p'
case "$parts" in *train*)
echo
echo "training, 1 thread a process, $steps steps an epoch, the second epoch timed:"
for ex in mlp cnn; do
  cfg="examples/fashion_mnist_$ex.lua"
  one=$(bin/kbl bench/dist_train.lua "$cfg" "$steps")
  two=$($mpi -n 2 bin/kbl bench/dist_train.lua "$cfg" "$steps")
  sync=$(KBL_DIST_OVERLAP=0 $mpi -n 2 bin/kbl bench/dist_train.lua "$cfg" "$steps")
  echo "$ex 1: $one"
  echo "$ex 2: $two"
  echo "$ex 2 (no overlap): $sync"
  s1=$(echo "$one" | sed 's/.*samples_per_sec=\([0-9.]*\).*/\1/')
  s2=$(echo "$two" | sed 's/.*samples_per_sec=\([0-9.]*\).*/\1/')
  w2=$(echo "$two" | sed 's/.*wait_ms=\([0-9.]*\).*/\1/')
  ws=$(echo "$sync" | sed 's/.*wait_ms=\([0-9.]*\).*/\1/')
  echo "$ex: scaling efficiency $(echo "$s2 / (2 * $s1)" | bc -l | cut -c1-5); wait after backward ${w2} ms with overlap, ${ws} ms without"
done
;; esac
case "$parts" in *allreduce*)
echo
echo "all-reduce of float32 sums, 2 processes, median seconds (kbl.dist, Open MPI's MPI_Allreduce, PyTorch gloo):"
mpicc -O2 -o "$tmp/allreduce" bench/dist_allreduce.c
sizes="4096 65536 262144 1048576 2097152 4194304 8388608"
$mpi -n 2 bin/kbl bench/dist_allreduce.lua $sizes >"$tmp/kbl"
$mpi -n 2 "$tmp/allreduce" $sizes >"$tmp/mpi"
/usr/bin/python3 bench/dist_allreduce.py $sizes >"$tmp/torch"
echo "bytes kbl_s openmpi_s torch_s kbl_GB/s openmpi_GB/s kbl/openmpi kbl/torch"
# algorithm bandwidth: bytes / time
join "$tmp/kbl" "$tmp/mpi" | join - "$tmp/torch" |
  awk '{ printf "%d %.6f %.6f %.6f %.3f %.3f %.2f %.2f\n", $1, $2, $3, $4, $1 / $2 / 1e9, $1 / $3 / 1e9, $2 / $3, $2 / $4 }'
;; esac
