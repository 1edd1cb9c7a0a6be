#!/usr/bin/env python3
"""Checks a training run's metrics.csv (as written by a generated training executable).

usage: check_training.py metrics.csv --first-loss L --tolerance T --final-valid-below V

The first step's loss must be within T of L (an untrained model predicts about uniformly:
ln(vocab)), and the last validation loss recorded must be below V. Prints both.
"""
import csv
import sys


def main():
    args = sys.argv[1:]
    path = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    rows = list(csv.DictReader(open(path)))
    if not rows:
        print('no rows in %s' % path)
        return 1
    first = float(rows[0]['loss'])
    valid = [float(r['valid_loss']) for r in rows if r.get('valid_loss')]
    print('first loss %.4f (step %s), validation losses %s' %
          (first, rows[0]['step'], ', '.join('%.4f' % v for v in valid)))
    ok = abs(first - float(opts['--first-loss'])) <= float(opts['--tolerance'])
    if not ok:
        print('FAIL: the first loss is not within %s of %s' % (opts['--tolerance'],
                                                               opts['--first-loss']))
    if not valid or valid[-1] >= float(opts['--final-valid-below']):
        print('FAIL: the final validation loss is not below %s' % opts['--final-valid-below'])
        ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
