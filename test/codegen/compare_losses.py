#!/usr/bin/env python3
"""Compares the loss and validation-loss columns of training runs' metrics.csv files.

usage: compare_losses.py REFERENCE OTHER... [--rtol R] [--from-step S]

Every OTHER must have the REFERENCE's steps (from S on) with losses within R (relative).
Prints the largest relative difference per file; exits 1 when one is beyond R.
"""
import csv
import sys


def rows(path, first):
    return {int(r['step']): r for r in csv.DictReader(open(path)) if int(r['step']) >= first}


def main():
    args = sys.argv[1:]
    rtol = float(args[args.index('--rtol') + 1]) if '--rtol' in args else 1e-5
    first = int(args[args.index('--from-step') + 1]) if '--from-step' in args else 1
    paths = [a for i, a in enumerate(args)
             if not a.startswith('--') and (i == 0 or not args[i - 1].startswith('--'))]
    ref = rows(paths[0], first)
    ok = True
    for path in paths[1:]:
        other = rows(path, first)
        worst = 0.0
        for step, r in ref.items():
            if step not in other:
                print('MISSING step %d in %s' % (step, path))
                ok = False
                continue
            for col in ('loss', 'valid_loss'):
                if not r[col]:
                    continue
                a, b = float(r[col]), float(other[step][col])
                worst = max(worst, abs(a - b) / abs(a))
        good = worst <= rtol
        ok &= good
        print('%s %d steps, largest relative difference %.3g' % ('OK' if good else 'DIFF',
                                                                len(ref), worst))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
