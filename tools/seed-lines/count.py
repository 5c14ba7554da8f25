"""Counts a seed program's lines: non-blank, non-comment, imports excluded; for Rust
also `use` items (to their `;`) and printing impls (`impl fmt::Debug/Display for`,
to the closing brace at column 0)."""
import sys

def count(path):
    rust = path.endswith(".rs")
    n = 0
    skip_use = skip_impl = False
    for line in open(path):
        t = line.strip()
        if skip_impl:
            if line.startswith("}"):
                skip_impl = False
            continue
        if skip_use:
            if t.endswith(";"):
                skip_use = False
            continue
        if not t or t.startswith("//" if rust else "#"):
            continue
        if rust:
            if t.startswith("use ") or t.startswith("pub use "):
                skip_use = not t.endswith(";")
                continue
            if t.startswith("impl fmt::Debug for") or t.startswith("impl fmt::Display for"):
                skip_impl = not t.endswith("}")
                continue
        else:
            if t.startswith("import ") or t.startswith("from "):
                continue
        n += 1
    return n

for p in sys.argv[1:]:
    print(count(p), p)
