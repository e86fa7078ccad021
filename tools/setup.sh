#!/usr/bin/env bash
# Installs what building and testing lgh needs on Debian bookworm (idempotent:
# only missing packages are installed, and the package lists are refreshed
# only when something must be installed).
#
#   bash tools/setup.sh           everything: build, tests, benchmarks, the PyTorch references
#   bash tools/setup.sh build     only what building the library and the lgh tool needs
#   bash tools/setup.sh --fuzz    also clang and libFuzzer, for tools/fuzz.sh
#                                 and tools/sanitize.sh (docs/reliability.md)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libeigen3-dev catch2 libstb-dev nlohmann-json3-dev libcli11-dev libmatio-dev
  libpng-dev libjpeg62-turbo-dev
)
build_only=0
for arg in "$@"; do
  case "$arg" in
    build) build_only=1 ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "setup: unknown option '$arg' (expected build or --fuzz)" >&2; exit 2 ;;
  esac
done
if [ "$build_only" = 0 ]; then
  packages+=(libbenchmark-dev python3 python3-numpy python3-scipy python3-torch qemu-user)
fi

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
