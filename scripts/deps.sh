#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Install the Debian packages jwtd needs, only those that are missing.
#   scripts/deps.sh build   what building and running jwtd needs
#   scripts/deps.sh test    that, plus what the whole test suite needs
# Runs apt-get as root (directly, or through sudo when available). Services
# that packages would start on install (nginx, PostgreSQL) are kept from
# starting: the tests start their own, on loopback, in throwaway dirs.
set -euo pipefail

# What building and running needs. libpq-dev is optional for the build
# (meson -Dpostgres=auto) but installed here so that `make run` has it.
BUILD_PKGS=(
  build-essential pkg-config meson ninja-build python3
  libmicrohttpd-dev libgnutls28-dev libssl-dev libargon2-dev libjansson-dev
  libsqlite3-dev libpq-dev libcrypt-dev libqrencode-dev libcurl4-openssl-dev libcbor-dev
)
# What the test suite needs on top: cmocka, clang for the fuzzers, the real
# servers the tests start (PostgreSQL, nginx, an SMTP server), a browser and
# its driver, and the interop libraries.
TEST_PKGS=(
  libcmocka-dev clang libclang-rt-14-dev
  python3-pytest python3-pytest-xdist python3-jwt python3-cryptography python3-aiosmtpd
  python3-selenium chromium chromium-driver
  postgresql nginx wrk curl
)

want=("${BUILD_PKGS[@]}")
if [ "${1:-build}" = "test" ]; then
  want+=("${TEST_PKGS[@]}")
  # The interop tests use the `jose` package from npm: Node.js and npm are
  # needed (Debian's are fine when the machine has none).
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: missing packages (${missing[*]}) and not root; install them and retry" >&2
    exit 1
  fi
fi

# Keep services from starting at install time (policy-rc.d, exit 101).
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  placed_policy=1
fi
cleanup() { [ "$placed_policy" = 1 ] && $SUDO rm -f "$policy"; true; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/jwtd-apt.log 2>&1; then
  $SUDO apt-get update -q >>/tmp/jwtd-apt.log 2>&1
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/jwtd-apt.log 2>&1 || {
    tail -20 /tmp/jwtd-apt.log >&2
    exit 1
  }
fi
