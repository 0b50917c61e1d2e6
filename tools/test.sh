#!/usr/bin/env bash
# The README's test command: installs dependencies, configures a release build
# with warnings as errors, builds, and runs every test suite that needs no GPU
# (the cuda suite runs too and reports "skipped" without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-deps.sh
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release --werror ${MESON_ARGS:-}
fi
ninja -C "$BUILD"
meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@"
