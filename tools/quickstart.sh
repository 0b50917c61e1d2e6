#!/usr/bin/env bash
# The README's main job: installs dependencies, builds trickbench (CPU), and
# runs the quick ablation matrix on real Fashion-MNIST into SQLite, ending with
# its markdown report. Re-running resumes: finished runs are not repeated.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release
fi
ninja -C build
# OpenMP threads sleep while they wait: robust when other work shares the cores
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
./build/trickbench run matrices/quick.json --db results/quick.db --device cpu "$@"
