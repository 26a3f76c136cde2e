# SPDX-License-Identifier: Apache-2.0
"""Check that build/meson-uninstalled/jwtd-uninstalled.pc lets a program
built against the clone find <jwtd.h>: one of its Cflags -I directories
(with ${prefix} and ${srcdir} expanded) must hold the public header.

Usage: pc_uninstalled.py BUILD_DIR
"""
import os
import re
import sys


def main() -> int:
    pc = os.path.join(sys.argv[1], 'meson-uninstalled', 'jwtd-uninstalled.pc')
    variables, cflags = {}, None
    with open(pc, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            m = re.match(r'^([A-Za-z_]+)=(.*)$', line)
            if m:
                variables[m.group(1)] = m.group(2)
            elif line.startswith('Cflags:'):
                cflags = line[len('Cflags:'):]
    if cflags is None:
        print(f'{pc}: no Cflags line')
        return 1

    def expand(text: str) -> str:
        for _ in range(5):
            text = re.sub(r'\$\{(\w+)\}', lambda m: variables.get(m.group(1), ''), text)
        return text

    dirs = [expand(w[2:]) for w in cflags.split() if w.startswith('-I')]
    if not any(os.path.isfile(os.path.join(d, 'jwtd.h')) for d in dirs):
        print(f'{pc}: no -I directory holds jwtd.h (Cflags:{cflags})')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
