#!/usr/bin/env bash
# Installs what building and testing lgh needs on Debian bookworm (idempotent:
# only missing packages are installed, and the package lists are refreshed
# only when something must be installed).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libeigen3-dev catch2 libstb-dev nlohmann-json3-dev libcli11-dev libmatio-dev libbenchmark-dev
  python3 python3-numpy python3-scipy python3-torch
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
