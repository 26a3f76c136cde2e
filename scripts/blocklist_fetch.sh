#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Regenerate data/blocklist/ (the password policy's common-password and
# dictionary lists) from pinned npm packages of zxcvbn-ts. Run by hand by a
# maintainer, never by the build: the build only reads the vendored text.
#
#   scripts/blocklist_fetch.sh
#
# Deterministic: the tarballs are pinned by version and sha256 (a mismatch
# stops the script before anything is written), and the JSON arrays are
# written out verbatim, one entry per line, in upstream order. Normalizing
# (lower case, length, duplicates) is the build generator's job, not this
# one's: the vendored files stay exactly what upstream ships.
# To move to newer versions: change the pins below, run, review the diff,
# and update data/blocklist/README.md (versions, sha256s, counts).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/blocklist
PY=${PYTHON:-python3}

# spec  sha256-of-tarball  file-in-package  vendored-name
PINS=(
  "@zxcvbn-ts/language-common@4.1.3 bf3027c16c069d7877e25dc8751bc819e10e479afcc5ee1a323eb2ab73129ca9 package/src/passwords.json passwords.txt"
  "@zxcvbn-ts/language-en@4.1.1 4515020b65ad9ea2b7dc9275089d60ceb39a267f4ed4b9389ff6a2c44f7372a8 package/src/wikipedia.json wikipedia.txt"
  "@zxcvbn-ts/language-en@4.1.1 4515020b65ad9ea2b7dc9275089d60ceb39a267f4ed4b9389ff6a2c44f7372a8 package/src/firstnames.json firstnames.txt"
)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Fetch and verify every tarball first, so a bad pin leaves $OUT untouched.
declare -A TARBALL=()
for pin in "${PINS[@]}"; do
  read -r spec sum member name <<<"$pin"
  if [ -z "${TARBALL[$spec]:-}" ]; then
    dir="$TMP/pack$((${#TARBALL[@]} + 1))"
    mkdir -p "$dir"
    file=$(npm pack --ignore-scripts --silent --pack-destination "$dir" "$spec" | tail -n 1)
    TARBALL[$spec]="$dir/$file"
  fi
  tgz=${TARBALL[$spec]}
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "blocklist_fetch: $spec: sha256 $got, pinned $sum" >&2
    exit 1
  fi
  mkdir -p "$TMP/x/$name"
  tar -xzf "$tgz" -C "$TMP/x/$name" "$member" package/LICENSE.txt
done

# Every package must carry the same MIT text: one LICENSE file covers them.
first=""
for pin in "${PINS[@]}"; do
  read -r spec sum member name <<<"$pin"
  lic="$TMP/x/$name/package/LICENSE.txt"
  if [ -z "$first" ]; then
    first=$lic
  elif ! cmp -s "$first" "$lic"; then
    echo "blocklist_fetch: $spec: LICENSE.txt differs; vendor it separately" >&2
    exit 1
  fi
done

mkdir -p "$OUT"
for pin in "${PINS[@]}"; do
  read -r spec sum member name <<<"$pin"
  "$PY" - "$TMP/x/$name/$member" "$OUT/$name" <<'EOF'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    words = json.load(f)
if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
    sys.exit(f"{src}: not a JSON array of strings")
for w in words:
    # One entry per line: an entry holding a line break would split.
    if "\n" in w or "\r" in w or "\0" in w:
        sys.exit(f"{src}: entry {w!r} holds a line break or NUL")
with open(dst, "w", encoding="utf-8", newline="\n") as f:
    for w in words:
        f.write(w + "\n")
EOF
done
cp "$first" "$OUT/LICENSE"

for pin in "${PINS[@]}"; do
  read -r spec sum member name <<<"$pin"
  printf '%s  %s lines, from %s %s\n' "$OUT/$name" "$(wc -l <"$OUT/$name")" "$spec" "$member"
done
(cd "$OUT" && sha256sum LICENSE passwords.txt wikipedia.txt firstnames.txt)
