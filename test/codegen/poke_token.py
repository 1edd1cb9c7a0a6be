#!/usr/bin/env python3
"""Writes a copy of a safetensors file with one element of an i32 tensor replaced.

usage: poke_token.py IN OUT TENSOR INDEX VALUE

For the tests of bad token and target ids: the inputs that `llamac run --save-inputs`
writes, with one id made out of range.
"""
import json
import struct
import sys


def main():
    src, dst, name, index, value = sys.argv[1:6]
    data = open(src, 'rb').read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    info = header[name]
    if info['dtype'] != 'I32':
        sys.exit('poke_token.py: %s is %s, not I32' % (name, info['dtype']))
    start = 8 + n + info['data_offsets'][0] + 4 * int(index)
    body = bytearray(data)
    body[start:start + 4] = struct.pack('<i', int(value))
    open(dst, 'wb').write(bytes(body))


if __name__ == '__main__':
    main()
