#!/usr/bin/env bash
# Installs what building and testing lgh needs on Debian bookworm (idempotent:
# only missing packages are installed, and the package lists are refreshed
# only when something must be installed).
#
#   bash tools/setup.sh           the build and the tests
#   bash tools/setup.sh --fuzz    also clang and libFuzzer, for tools/fuzz.sh
#                                 and tools/sanitize.sh (docs/reliability.md)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libeigen3-dev catch2 libstb-dev nlohmann-json3-dev libcli11-dev libmatio-dev libbenchmark-dev
  libpng-dev libjpeg62-turbo-dev
  python3 python3-numpy python3-scipy python3-torch
  qemu-user
)
for arg in "$@"; do
  case "$arg" in
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "setup: unknown option '$arg' (expected --fuzz)" >&2; exit 2 ;;
  esac
done

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
