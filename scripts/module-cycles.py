#!/usr/bin/env python3
"""Lists the `crate::<module>` dependencies between the top-level modules of a crate and fails
when they form a cycle (issue 8: `receivers -> state <- api`, no import circles).

Usage: scripts/module-cycles.py [crate src dir, default server/src]
"""
import collections
import os
import re
import sys

src_dir = sys.argv[1] if len(sys.argv) > 1 else "server/src"
edges = collections.defaultdict(set)
for root, _, files in os.walk(src_dir):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        top = os.path.relpath(path, src_dir).split(os.sep)[0].removesuffix(".rs")
        if top in ("main", "lib"):
            continue  # the crate roots wire everything together
        text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
        names = re.findall(r"crate::([a-z_]+)", text)
        for group in re.findall(r"use crate::\{([^}]*)\}", text):
            names += [p.strip().split("::")[0] for p in group.split(",")]
        edges[top].update(n for n in names if n and n != top)

for module in sorted(edges):
    print(f"{module} -> {', '.join(sorted(edges[module]))}")

found = set()
for start in list(edges):
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                found.add(" -> ".join(path + [start]))
            elif nxt not in path:
                stack.append((nxt, path + [nxt]))
if found:
    print("cycles:\n  " + "\n  ".join(sorted(found)))
    sys.exit(1)
print("no cycles between top-level modules")
