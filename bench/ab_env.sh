#!/usr/bin/env bash
# A/B of one environment setting on `trickbench bench`: runs the same
# benchmark with and without VAR=VALUE in turn, ROUNDS times (interleaved,
# so that a drift of the machine hits both sides alike), and prints every
# figure, the medians and their ratio (with / without).
#
#   usage: bench/ab_env.sh VAR=VALUE ROUNDS BENCH_ARGS...
#   e.g.   bench/ab_env.sh TRICKBENCH_NO_FUSE=1 5 --model resnet18 --batch 64 --image 28 \
#              --channels 1 --classes 10 --steps 3 --threads 2 --warmup 1 --repeats 3
#
# TRICKBENCH (default ./build/trickbench) names the binary. A benchmark, not
# a test: nothing in `meson test` runs it.
set -euo pipefail
if [ $# -lt 3 ] || [[ "$1" != *=* ]]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
setting=$1 rounds=$2
shift 2
bin=${TRICKBENCH:-./build/trickbench}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

ips() { "$@" --json | tail -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_sec"])'; }

with=() without=()
for _ in $(seq "$rounds"); do
    with+=("$(ips env "$setting" "$bin" bench "$@")")
    without+=("$(ips "$bin" bench "$@")")
done
python3 - "$setting" "${with[*]}" "${without[*]}" <<'PY'
import statistics
import sys
setting, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"with {setting}: {a} median {ma:.2f} images/s")
print(f"without:{' ' * (len(setting) - 3)} {b} median {mb:.2f} images/s")
print(f"ratio with/without: {ma / mb:.3f}")
PY
