#!/usr/bin/env python3
"""perf_cost.py PERF_DATA TPS SECONDS: CPU microseconds per transaction spent
in (inclusive of callees) each function, from a `perf record -F 2000 -g`
of the pgbench backends.  One sample = 1/2000 s of one process's CPU."""
import collections
import re
import subprocess
import sys

data, tps, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
out = subprocess.run(['perf', 'script', '-i', data], capture_output=True, text=True).stdout
tx = tps * secs
incl = collections.Counter()
n = 0
for block in out.split('\n\n'):
    frames = []
    for line in block.strip().split('\n')[1:]:
        parts = line.split()
        if len(parts) > 1:
            frames.append(re.sub(r'\+0x[0-9a-f]+$', '', parts[1]))
    if not frames:
        continue
    n += 1
    for f in set(frames):
        incl[f] += 1
us = 1e6 / 2000 / tx
print(f'{n} samples, {tx:.0f} transactions: {n * us:.1f} us CPU per transaction (user + kernel)')
print('inclusive us/tx  function')
for f, c in incl.most_common(80):
    if f.startswith('0x') or f == '[unknown]':
        continue
    print(f'{c * us:10.1f}  {f}')
