#!/usr/bin/env bash
# Installs the Debian packages trickbench builds, tests and runs with.
# Idempotent and quiet: apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config meson ninja-build
  libcjson-dev libsqlite3-dev libdnnl-dev zlib1g-dev libjpeg-dev libpng-dev
  libxml2-dev
  nettle-dev libcmocka-dev
  dataset-fashion-mnist sqlite3
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
