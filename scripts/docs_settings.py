#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check that the settings table of docs/configuration.md is the binary's.

The table is generated with `jwtd config settings --markdown`; this check
fails (exit 1, with a diff) when a setting was added or changed without
regenerating it. Run by `meson test` (suite unit) and by hand:
scripts/docs_settings.py JWTD_BINARY DOCS/configuration.md
"""
import difflib
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        print("usage: docs_settings.py JWTD_BINARY CONFIGURATION_MD", file=sys.stderr)
        return 2
    binary, doc = sys.argv[1], sys.argv[2]
    want = subprocess.run([binary, "config", "settings", "--markdown"], check=True,
                          capture_output=True, text=True).stdout.splitlines()
    with open(doc, encoding="utf-8") as f:
        have = [line for line in f.read().splitlines() if line.startswith("| `")]
    # Other tables of the page start with "| `" too: compare the settings only.
    names = {row.split("`")[1] for row in want}
    have = [row for row in have if row.split("`")[1] in names or row.count("|") == 5]
    if have == want:
        print("docs/configuration.md lists the %d settings of the binary" % len(want))
        return 0
    sys.stdout.writelines(difflib.unified_diff([r + "\n" for r in have], [r + "\n" for r in want],
                                               "docs/configuration.md", "jwtd config settings"))
    print("regenerate the table: jwtd config settings --markdown (docs/configuration.md)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
