#!/usr/bin/env python3
"""Feeds truncated and garbled versions of every model in models/ to llamac-opt and
`llamac info`, and checks that each run ends with an error status (1) and a diagnostic, not
with a signal, an assertion or a hang.

usage: malformed_models.py <bin dir> <models dir> <scratch dir>
"""
import os
import random
import subprocess
import sys


def variants(text, rng):
    """(label, text) pairs, each certain to be malformed IR."""
    last_brace = text.rindex("}")
    # Truncations: any cut before the final brace leaves a region unclosed.
    for i in range(8):
        cut = 1 + (last_brace - 1) * i // 8
        yield f"truncated at byte {cut}", text[:cut]
    yield "truncated before the final brace", text[:last_brace]
    code = [i for i, line in enumerate(text.splitlines(keepends=True))
            if line.strip() and not line.lstrip().startswith("//")]
    lines = text.splitlines(keepends=True)
    for k in range(6):
        i = rng.choice(code)
        pos = rng.randrange(len(lines[i].rstrip("\n")) + 1)
        garbled = lines[:]
        # A backtick is not a token of MLIR's syntax outside string literals (the models
        # have none), so the file cannot parse.
        garbled[i] = lines[i][:pos] + "`" + lines[i][pos:]
        yield f"backtick inserted in line {i + 1}", "".join(garbled)
    for k in range(3):
        i = rng.choice([j for j in code if "{" in lines[j] or "}" in lines[j]])
        garbled = lines[:]
        garbled[i] = lines[i].replace("{", "", 1) if "{" in lines[i] else lines[i].replace("}", "", 1)
        yield f"brace removed from line {i + 1}", "".join(garbled)
    # Semantic damage that still parses: wrong shapes and hyper-parameters.
    yield "n_kv_heads not dividing n_heads", text.replace("n_kv_heads = ", "n_kv_heads = 7", 1)
    yield "a weight with a wrong shape", text.replace("@attention.wq : tensor<", "@attention.wq : tensor<3x", 1)
    yield "unknown attribute keyword", text.replace(" eps ", " epsilon ", 1)
    yield "binary garbage", "".join(chr(rng.randrange(1, 256)) for _ in range(300))


def main():
    bindir, models, scratch = sys.argv[1:4]
    os.makedirs(scratch, exist_ok=True)
    rng = random.Random(1234)
    tools = [[os.path.join(bindir, "llamac-opt")], [os.path.join(bindir, "llamac"), "info"]]
    failures, runs = [], 0
    for name in sorted(os.listdir(models)):
        if not name.endswith(".mlir"):
            continue
        text = open(os.path.join(models, name)).read()
        for n, (label, bad) in enumerate(variants(text, rng)):
            path = os.path.join(scratch, f"{name[:-5]}.{n}.mlir")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(bad)
            for tool in tools:
                runs += 1
                try:
                    p = subprocess.run(tool + [path], capture_output=True, timeout=60)
                except subprocess.TimeoutExpired:
                    failures.append(f"{name}: {label}: {tool[-1]} hung")
                    continue
                err = p.stderr.decode(errors="replace")
                if p.returncode < 0:
                    failures.append(f"{name}: {label}: {' '.join(tool)} killed by signal {-p.returncode}")
                elif p.returncode != 1:
                    failures.append(f"{name}: {label}: {' '.join(tool)} exited {p.returncode}")
                elif "error" not in err:
                    failures.append(f"{name}: {label}: {' '.join(tool)} printed no error")
    for f in failures:
        print("FAIL:", f)
    print(f"{runs - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
