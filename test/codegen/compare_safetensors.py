#!/usr/bin/env python3
"""Compares the tensors of two safetensors files (F32/F64/I32/I64), name by name.

usage: compare_safetensors.py A B [--rtol R] [--names n1,n2,...] [--rename a=b,...]

Each tensor of A (or of --names) must be in B (B's name after --rename) with the same shape;
values compare norm-wise: max|a-b| <= rtol * max(max|a|, 1e-30). Prints one line per tensor
and exits 1 on any mismatch, so lit tests fail with the tensor named.
"""
import json
import struct
import sys


def read(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    codes = {'F32': 'f', 'F64': 'd', 'I32': 'i', 'I64': 'q'}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        code = codes[entry['dtype']]
        lo, hi = entry['data_offsets']
        count = (hi - lo) // struct.calcsize(code)
        out[name] = (entry['shape'], struct.unpack('<%d%s' % (count, code), body[lo:hi]))
    return out


def main():
    args = sys.argv[1:]
    rtol, names, rename = 1e-4, None, {}
    paths = []
    i = 0
    while i < len(args):
        if args[i] == '--rtol':
            rtol = float(args[i + 1]); i += 2
        elif args[i] == '--names':
            names = args[i + 1].split(','); i += 2
        elif args[i] == '--rename':
            rename = dict(p.split('=') for p in args[i + 1].split(',')); i += 2
        else:
            paths.append(args[i]); i += 1
    a, b = read(paths[0]), read(paths[1])
    ok = True
    for name in names or sorted(a):
        other = rename.get(name, name)
        if name not in a or other not in b:
            print('MISSING %s' % name); ok = False; continue
        (sa, va), (sb, vb) = a[name], b[other]
        if sa != sb:
            print('SHAPE %s %s vs %s' % (name, sa, sb)); ok = False; continue
        scale = max(max((abs(x) for x in va), default=0.0), 1e-30)
        diff = max((abs(x - y) for x, y in zip(va, vb)), default=0.0)
        good = diff <= rtol * scale
        ok &= good
        print('%s %s max|diff| %.3g relative %.3g' % ('OK' if good else 'DIFF', name, diff,
                                                      diff / scale))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
