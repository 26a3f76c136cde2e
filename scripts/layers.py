#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check the include graph of src/ against the layers of docs/architecture.md.

Every `#include "..."` between project files is an edge. The check fails
(exit 1, one line per problem) when an edge goes to a layer its file may
not use, or when the file graph has a cycle. Run by `meson test` (suite
unit) and by hand: scripts/layers.py [SRC_DIR] [--dot] (--dot prints the
directory graph in Graphviz form).
"""
import os
import re
import sys

# A layer may include itself and what is listed here; nothing else.
ALLOWED = {
    "base": set(),
    "lib": {"include"},
    "store": {"base"},
    "core": {"base", "lib", "include", "store"},
    "http": {"base", "lib", "include", "store", "core"},
    "api": {"base", "lib", "include", "store", "core", "http"},
    "pages": {"base", "lib", "include", "store", "core", "http"},
    "server": {"base", "lib", "include", "store", "core", "http", "api", "pages"},
    "cli": {"base", "lib", "include", "store", "core", "http", "server"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    if rel == "jwtd.h" or rel.startswith("include/"):
        return "include"
    return rel.split("/", 1)[0]


def main(argv):
    src = argv[1] if len(argv) > 1 and not argv[1].startswith("--") else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src")
    src = os.path.abspath(src)
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith((".c", ".h")):
                path = os.path.join(root, n)
                files[os.path.relpath(path, src)] = path
    edges = {}
    problems = []
    for rel, path in sorted(files.items()):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        me = layer_of(rel)
        if me not in ALLOWED:
            problems.append("%s: directory %s is not a known layer" % (rel, me))
            continue
        edges[rel] = []
        for inc in INCLUDE.findall(text):
            target = inc
            if inc not in files and inc != "jwtd.h":
                # same-directory include ("foo.h" from src/x/)
                local = os.path.join(os.path.dirname(rel), inc)
                if local in files:
                    target = local
                else:
                    problems.append("%s: includes %s, which is not in src/" % (rel, inc))
                    continue
            them = layer_of(target)
            if them != me and them not in ALLOWED[me]:
                problems.append("%s (%s) includes %s (%s): %s may use only %s" % (
                    rel, me, target, them, me, ", ".join(sorted(ALLOWED[me])) or "itself"))
            if target in files:
                edges[rel].append(target)
    # cycles between files (headers including each other)
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in edges.get(n, []):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                problems.append("include cycle: " + " -> ".join(cyc))
            elif not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if not state.get(n):
            visit(n)
    if "--dot" in argv:
        dirs = set()
        for a, targets in edges.items():
            for b in targets:
                la, lb = layer_of(a), layer_of(b)
                if la != lb:
                    dirs.add((la, lb))
        print("digraph layers {")
        for a, b in sorted(dirs):
            print('  "%s" -> "%s";' % (a, b))
        print("}")
    for p in problems:
        print(p)
    if problems:
        return 1
    if "--dot" not in argv:
        print("layers: %d files, %d includes, no upward edge, no cycle" % (
            len(edges), sum(len(v) for v in edges.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
