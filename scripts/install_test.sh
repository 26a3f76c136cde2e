#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What `meson install` puts down, checked in a scratch DESTDIR (no root, no
# system change):
#   scripts/install_test.sh [BUILD_DIR]      (default: build)
# - the file the installed unit passes to --config is installed, and is the
#   file the installed binary reads by default (so `jwtd user add` on the
#   host reads what the service reads);
#   the unit loads no environment file (settings live in that file alone);
# - the installed configuration loads (`jwtd config check`);
# - a second `meson install` keeps an edited configuration.
# Run by scripts/test.sh after the release build.
set -euo pipefail
build=${1:-build}
fail() { printf 'install_test: FAIL: %s\n' "$*" >&2; exit 1; }

dest=$(mktemp -d /tmp/jwtd-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
install() { DESTDIR=$dest meson install -C "$build" --no-rebuild --quiet >/dev/null; }
install

unit=$(find "$dest" -name jwtd.service -type f)
[ -n "$unit" ] || fail "no jwtd.service installed"
conf=$(sed -n 's/^ExecStart=.* --config \([^ ]*\)$/\1/p' "$unit")
[ -n "$conf" ] || fail "the unit's ExecStart names no --config: $(grep ExecStart "$unit")"
[ -f "$dest$conf" ] || fail "the unit runs with --config $conf, which meson install did not install"
if grep -q '^EnvironmentFile=' "$unit"; then
  fail "the unit loads an environment file that the operator commands would not read"
fi
bin=$(sed -n 's/^ExecStart=\([^ ]*\) serve .*/\1/p' "$unit")
[ -x "$dest$bin" ] || fail "the unit runs $bin, which is not installed"
"$dest$bin" --help | grep -qF "$conf" ||
  fail "$bin does not read $conf by default: $("$dest$bin" --help | grep -i configuration)"
out=$(cd "$dest" && env -u JWTD_CONFIG "$dest$bin" config check --config "$dest$conf" 2>&1) ||
  fail "the installed configuration does not load: $out"

echo "# edited by the operator" >>"$dest$conf"
install
[ "$(tail -n 1 "$dest$conf")" = "# edited by the operator" ] ||
  fail "a second meson install overwrote the edited $conf"
echo "install_test: the unit's $conf is installed, read by default, and kept"
