#!/usr/bin/env bash
# Fills .devdeps/ for the GPU machine (which reaches no package registry):
# the shared pack-deps.sh with what trickbench adds to its list (nettle for
# run hashes, oneDNN and the OpenCL loader its library links), minus
# OpenBLAS and gfortran, which the shared list brings and trickbench no
# longer uses: with them .devdeps is ~89 MB, over the 64 MiB a device call
# can carry; without, ~44 MB. Run from the project root, then carry
# ".devdeps" (tools/gpu-check.sh sources its env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/device/pack-deps.sh nettle-dev libnettle8 libdnnl-dev libdnnl2 ocl-icd-libopencl1 >/dev/null
lib=.devdeps/root/usr/lib/x86_64-linux-gnu
rm -rf "$lib/openblas-pthread" "$lib"/libgfortran* "$lib"/libopenblas* \
  .devdeps/root/usr/include/x86_64-linux-gnu/openblas-pthread
du -sh .devdeps
