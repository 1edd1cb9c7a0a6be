#!/usr/bin/env python3
"""Runs `llamac plan` on the LLaMA-1 models as Meta trained them and compares its
predictions with the published figures (docs/PLANNER.md has the sources).

usage: check_plan.py <llamac> <models dir> [--tolerance 0.15]

Prints one line per figure; exits 1 when any prediction is off by more than the tolerance.
"""
import re
import subprocess
import sys

# Touvron et al. 2023 (LLaMA): Table 15 GPU-hours; section 2 tokens (1.0T for 7B and 13B,
# 1.4T for 33B and 65B); section 2.4: 65B at ~380 tokens/s/GPU on 2048 A100-80GB; batch of
# 4M tokens at sequence 2048 (Table 2), i.e. 2048 tokens per GPU per step.
RUNS = [
    ('llama1-7b', 1.0e12, 82432),
    ('llama1-13b', 1.0e12, 135168),
    ('llama1-33b', 1.4e12, 530432),
    ('llama1-65b', 1.4e12, 1022362),
]


def plan(llamac, models, name, tokens):
    out = subprocess.run([llamac, 'plan', '%s/%s.mlir' % (models, name), '--devices', '2048',
                          '--device', 'a100-80gb', '--strategy', 'hybrid',
                          '--tokens-per-device', '2048', '--seq', '2048',
                          '--total-tokens', str(tokens)],
                         check=True, capture_output=True, text=True).stdout
    hours = float(re.search(r'device-hours for \S+ tokens: (\d+)', out).group(1))
    tps = float(re.search(r'throughput: ([\d.]+) tokens/s per device', out).group(1))
    mfu = float(re.search(r'MFU ([\d.]+)%', out).group(1))
    return hours, tps, mfu


def main():
    llamac, models = sys.argv[1], sys.argv[2]
    tolerance = float(sys.argv[sys.argv.index('--tolerance') + 1]) \
        if '--tolerance' in sys.argv else 0.15
    ok = True

    def check(what, predicted, published):
        nonlocal ok
        error = predicted / published - 1
        good = abs(error) <= tolerance
        ok &= good
        print('%s %s: predicted %.0f, published %.0f, %+.1f%%' %
              ('OK' if good else 'OFF', what, predicted, published, 100 * error))

    for name, tokens, published in RUNS:
        hours, tps, mfu = plan(llamac, models, name, tokens)
        check('%s GPU-hours' % name, hours, published)
        if name == 'llama1-65b':
            check('llama1-65b tokens/s per GPU', tps, 380)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
