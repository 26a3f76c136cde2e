#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the Debian packages of jwtd from this tree and try them on this
# machine, then purge them:
#   scripts/package_test.sh
# Root only (it installs packages and creates the system user jwtd), on
# Debian 12, with or without systemd running (nothing is started through
# systemd). Steps:
#   1. install what building needs (debian/control's Build-Depends, and
#      debhelper, dpkg-dev, fakeroot), only what is missing, like deps.sh;
#   2. copy the tree as git sees it (tracked files, and new ones that are
#      not ignored, with their uncommitted changes) to a temporary directory
#      and run `dpkg-buildpackage -b -uc -us` there; lintian when installed;
#   3. install jwtd, libjwtd0 and libjwtd-dev; check the version, the user,
#      the permissions, `jwtd migrate` and `jwtd serve` as the user jwtd
#      with the packaged /etc/jwtd/jwtd.conf, the man pages (when man-db is
#      installed), the unit, libjwtd's pkg-config file;
#   4. purge, and check that nothing is left: the project's tests must not
#      find an /etc/jwtd/jwtd.conf afterwards.
# Steps 1-2 and 3-4 can run apart (scripts/test.sh builds while other
# tests run):
#   scripts/package_test.sh --build-only DIR   steps 1-2, the .deb files to DIR
#   scripts/package_test.sh --debs DIR         steps 3-4 with the files in DIR
# It refuses to run where a jwtd package or /etc/jwtd already is: it would
# purge someone's installation. On failure the packages are purged all the
# same and the build directory is kept for its log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
started=$SECONDS
say() { printf 'package_test: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

mode=all out=
case "${1:-}" in
  "") ;;
  --build-only) mode=build out=${2:?--build-only DIR} ;;
  --debs) mode=check out=${2:?--debs DIR} ;;
  *) say "usage: scripts/package_test.sh [--build-only DIR | --debs DIR]"; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  say "run as root: it installs packages and creates the system user jwtd"
  exit 2
fi

PACKAGES=(jwtd libjwtd0 libjwtd-dev)
for p in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv "not-installed"; then
    say "the package $p is on this machine already (dpkg -l $p): not touching it"
    exit 2
  fi
done
for d in /etc/jwtd /var/lib/jwtd; do
  if [ -e "$d" ]; then
    say "$d exists: a jwtd installation? Not touching it"
    exit 2
  fi
done
user_was_there=0
getent passwd jwtd >/dev/null && user_was_there=1
group_was_there=0
getent group jwtd >/dev/null && group_was_there=1

# The packaged configuration must be what the commands read: no JWTD_*
# setting from the caller's environment.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^JWTD_' || true)

# ---- 1. build dependencies ----
# debian/control's Build-Depends (debhelper-compat comes with debhelper),
# and the tools dpkg-buildpackage runs. dpkg-buildpackage checks the list
# itself: one missing here fails the build, naming it.
BUILD_PKGS=(
  debhelper dpkg-dev fakeroot build-essential
  meson ninja-build pkg-config python3 systemd
  libmicrohttpd-dev libssl-dev libargon2-dev libjansson-dev libsqlite3-dev libpq-dev
  libcrypt-dev libqrencode-dev libcurl4-openssl-dev libcbor-dev libgnutls28-dev
)
export DEBIAN_FRONTEND=noninteractive

# Keep services from starting while packages are installed (policy-rc.d,
# exit 101), unless the machine has its own policy already.
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  placed_policy=1
fi

work=$(mktemp -d /tmp/jwtd-package.XXXXXX)
installed=0
ok=0
cleanup() {
  set +e
  if [ "$installed" = 1 ]; then
    dpkg --purge "${PACKAGES[@]}" >>"$work/purge.log" 2>&1
  fi
  if [ "$user_was_there" = 0 ] && getent passwd jwtd >/dev/null; then
    userdel jwtd >/dev/null 2>&1
  fi
  if [ "$group_was_there" = 0 ] && getent group jwtd >/dev/null; then
    groupdel jwtd >/dev/null 2>&1
  fi
  [ "$placed_policy" = 1 ] && rm -f "$policy"
  if [ "$ok" = 1 ]; then
    rm -rf "$work"
  else
    say "kept $work (build.log, install.log, serve.log)"
  fi
}
trap cleanup EXIT

missing=()
[ "$mode" = check ] && BUILD_PKGS=()   # built already
for p in "${BUILD_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1; then
    apt-get update -q >>"$work/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$work/apt.log" 2>&1 || {
      tail -20 "$work/apt.log" >&2
      fail "could not install the build dependencies"
    }
  fi
fi

# ---- 2. build ----
deb_version=$(cd "$root" && dpkg-parsechangelog -S Version)
version=${deb_version%-*}
src="$work/jwtd-$version"
arch=$(dpkg --print-architecture)
if [ "$mode" = check ]; then
  say "packages built beforehand: $out"
  cp "$out"/*.deb "$out"/*.changes "$work/"
else
  mkdir -p "$src"
  say "copying the tree to $src"
  (
    cd "$root"
    # Tracked files (as they are now, edits included) and new files git does
    # not ignore; a tracked file deleted in the work tree is left out.
    git ls-files -z -c -o --exclude-standard |
      while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
      done |
      tar --null -T - -cf -
  ) | tar -xf - -C "$src"

  say "dpkg-buildpackage -b -uc -us (log: $work/build.log)"
  build_started=$SECONDS
  if ! (cd "$src" && dpkg-buildpackage -b -uc -us -J"$(nproc)") >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    fail "dpkg-buildpackage failed"
  fi
  say "built in $((SECONDS - build_started)) s"
fi
debs=()
for p in "${PACKAGES[@]}"; do
  f="$work/${p}_${deb_version}_${arch}.deb"
  [ -f "$f" ] || fail "no $f"
  debs+=("$f")
done
jwtd_deb="$work/jwtd_${deb_version}_${arch}.deb"
dpkg-deb -c "$jwtd_deb" >"$work/contents.txt"
for f in ./usr/bin/jwtd ./etc/jwtd/jwtd.conf ./lib/systemd/system/jwtd.service \
         ./usr/share/man/man8/jwtd.8.gz ./usr/share/man/man5/jwtd.conf.5.gz \
         ./usr/share/doc/jwtd/copyright; do
  grep -q " $f\$" "$work/contents.txt" || fail "$f is not in the jwtd package"
done
# The pages name the package's own paths (they are filled in at build time).
dpkg-deb --fsys-tarfile "$jwtd_deb" | tar -xO ./usr/share/man/man8/jwtd.8.gz | zcat >"$work/jwtd.8"
for path in /etc/jwtd/jwtd.conf /lib/systemd/system/jwtd.service; do
  grep -q "^\.IR\? $path" "$work/jwtd.8" || fail "jwtd(8) does not name $path"
done

# Lintian, when installed (it is not installed for this). Suppressed: the
# maintainer address debian/control is given (jwtd@localhost, no dot in the
# domain) and the missing ITP bug (the package is not meant for the
# archive); with a real address and an ITP both go away.
if command -v lintian >/dev/null 2>&1; then
  say "lintian"
  lintian --fail-on error,warning --display-info \
    --suppress-tags bogus-mail-host,bogus-mail-host-in-debian-changelog,initial-upload-closes-no-bugs \
    "$work/jwtd_${deb_version}_${arch}.changes" >&2 ||
    fail "lintian found errors or warnings"
fi
if [ "$mode" = build ]; then
  mkdir -p "$out"
  cp "${debs[@]}" "$work/jwtd_${deb_version}_${arch}.changes" "$out/"
  ok=1
  say "built: $out"
  exit 0
fi

# ---- 3. install and try ----
say "installing ${PACKAGES[*]}"
installed=1
apt-get install -y -q --no-install-recommends "${debs[@]}" >"$work/install.log" 2>&1 || {
  tail -20 "$work/install.log" >&2
  fail "apt-get install failed"
}

say "checking the installation"
out=$(jwtd --version)
[ "$out" = "jwtd $version" ] || fail "jwtd --version says '$out', not 'jwtd $version'"

getent passwd jwtd >/dev/null || fail "no user jwtd"
[ "$(stat -c '%U:%G %a' /var/lib/jwtd)" = "jwtd:jwtd 750" ] ||
  fail "/var/lib/jwtd is $(stat -c '%U:%G %a' /var/lib/jwtd), not jwtd:jwtd 750"
[ "$(stat -c '%U:%G %a' /etc/jwtd/jwtd.conf)" = "root:jwtd 640" ] ||
  fail "/etc/jwtd/jwtd.conf is $(stat -c '%U:%G %a' /etc/jwtd/jwtd.conf), not root:jwtd 640"

# Commands as the service runs them: the user jwtd, a clean environment.
as_jwtd() { (cd /var/lib/jwtd && exec setpriv --reuid=jwtd --regid=jwtd --init-groups --reset-env "$@"); }

out=$(as_jwtd jwtd migrate 2>&1) || fail "jwtd migrate as jwtd: $out"
db=/var/lib/jwtd/jwtd.db
[ -f "$db" ] || fail "jwtd migrate made no $db"
for f in "$db"*; do
  [ "$(stat -c '%U:%G %a' "$f")" = "jwtd:jwtd 600" ] ||
    fail "$f is $(stat -c '%U:%G %a' "$f"), not jwtd:jwtd 600"
done

out=$(jwtd config check 2>&1) || fail "jwtd config check: $out"
grep -q '^# configuration file: /etc/jwtd/jwtd.conf$' <<<"$out" ||
  fail "jwtd config check did not read /etc/jwtd/jwtd.conf: $out"
grep -Eq '^database += sqlite:/var/lib/jwtd/jwtd\.db +# /etc/jwtd/jwtd\.conf:[0-9]+$' <<<"$out" ||
  fail "jwtd config check: database is not the packaged one: $(grep '^database' <<<"$out")"
as_jwtd jwtd config check >/dev/null 2>&1 || fail "the user jwtd cannot read /etc/jwtd/jwtd.conf"

# Serve briefly, as the user jwtd, on a free loopback port: healthy and
# ready, SIGHUP reloads, SIGTERM stops with status 0.
say "jwtd serve as the user jwtd: ready, SIGHUP, SIGTERM"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd /var/lib/jwtd &&
  exec setpriv --reuid=jwtd --regid=jwtd --init-groups --reset-env \
    jwtd serve --listen "127.0.0.1:$port") >"$work/serve.log" 2>&1 &
serve_pid=$!
get() {
  python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
up=0
for _ in $(seq 100); do
  if get "http://127.0.0.1:$port/readyz"; then up=1; break; fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$up" != 1 ]; then
  kill "$serve_pid" 2>/dev/null || true
  tail -20 "$work/serve.log" >&2
  fail "jwtd serve (as jwtd, packaged configuration) did not become ready"
fi
kill -HUP "$serve_pid"
for _ in $(seq 50); do grep -q 'reloaded' "$work/serve.log" && break; sleep 0.1; done
grep -q 'reloaded' "$work/serve.log" || { kill "$serve_pid"; fail "no 'reloaded' after SIGHUP"; }
kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$work/serve.log" >&2; fail "jwtd serve exited with $rc after SIGTERM"; }

if command -v man >/dev/null 2>&1; then
  p8=$(man -w jwtd 2>/dev/null) || fail "man -w jwtd finds no page"
  p5=$(man -w 5 jwtd.conf 2>/dev/null) || fail "man -w 5 jwtd.conf finds no page"
  for p in "$p8" "$p5"; do
    warn=$(zcat "$p" | groff -man -ww -z 2>&1)
    [ -z "$warn" ] || fail "groff warns on $p: $warn"
  done
  zcat "$p5" | grep -q '^\.B access_ttl$' || fail "jwtd.conf(5) lacks the settings table"
else
  say "man-db is not installed: man pages not looked up (they are in the package)"
fi

unit=/lib/systemd/system/jwtd.service
grep -qx 'ExecStart=/usr/bin/jwtd serve --config /etc/jwtd/jwtd.conf' "$unit" ||
  fail "$unit does not run /usr/bin/jwtd with /etc/jwtd/jwtd.conf"
grep -qx 'User=jwtd' "$unit" || fail "$unit does not run as jwtd"
# Settings come from /etc/jwtd/jwtd.conf alone, which the commands read too.
if grep -q '^EnvironmentFile=' "$unit"; then fail "$unit loads an environment file"; fi
# Enabled (the symlink deb-systemd-helper makes, with or without systemd
# running), not started (debian/rules: --no-start).
[ -L /etc/systemd/system/multi-user.target.wants/jwtd.service ] ||
  fail "jwtd.service is not enabled"
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
fi

[ "$(pkg-config --modversion jwtd)" = "$version" ] || fail "pkg-config --modversion jwtd"

# ---- 4. purge ----
say "purging"
dpkg --purge "${PACKAGES[@]}" >"$work/purge.log" 2>&1 || {
  cat "$work/purge.log" >&2
  fail "dpkg --purge failed"
}
installed=0
for f in /etc/jwtd /var/lib/jwtd /usr/bin/jwtd "$unit" \
         /etc/systemd/system/multi-user.target.wants/jwtd.service; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is left after the purge"; fi
done
if compgen -G '/var/lib/systemd/deb-systemd-helper-enabled/*jwtd*' >/dev/null; then
  fail "deb-systemd-helper state is left after the purge"
fi

ok=1
say "PASS in $((SECONDS - started)) s"
