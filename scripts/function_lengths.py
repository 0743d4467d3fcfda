#!/usr/bin/env python3
"""Lengths of C++ function bodies, longest first: the ones over LIMIT lines.

Usage: scripts/function_lengths.py LIMIT GLOB... (e.g. 60 "master/*.cc"). A rough
scanner (no preprocessor): a report to read, not a gate.
"""
import re, sys, glob

def strip(line, state):
    out = []
    i = 0
    while i < len(line):
        if state['block']:
            j = line.find('*/', i)
            if j < 0: return ''.join(out)
            state['block'] = False; i = j + 2; continue
        if state['raw']:
            j = line.find(state['raw'], i)
            if j < 0: return ''.join(out)
            i = j + len(state['raw']); state['raw'] = None; continue
        c = line[i]
        if line.startswith('//', i): break
        if line.startswith('/*', i): state['block'] = True; i += 2; continue
        m = re.match(r'R"([^(]*)\(', line[i:])
        if m:
            state['raw'] = ')' + m.group(1) + '"'; i += m.end(); continue
        if c == '"' or c == "'":
            q = c; i += 1
            while i < len(line) and line[i] != q:
                i += 2 if line[i] == '\\' else 1
            i += 1; out.append('""'); continue
        out.append(c); i += 1
    return ''.join(out)

def scan(path, limit):
    state = {'block': False, 'raw': None}
    stack = []  # (kind, start_line, header)
    text_since = ''
    sig_start = None
    res = []
    for n, raw in enumerate(open(path, errors='replace'), 1):
        line = strip(raw.rstrip('\n'), state)
        for c in line:
            if c == '{':
                head = text_since.strip()
                in_fn = any(k == 'fn' for k, _, _ in stack)
                if re.search(r'\bnamespace\b', head): kind = 'ns'
                elif re.search(r'\b(class|struct|union|enum)\b', head) and '(' not in head.split('{')[0].split('=')[0] and not in_fn: kind = 'cls'
                elif ')' in head and not in_fn and not re.match(r'^(if|for|while|switch|else|do|catch)\b', head) and not head.endswith('=') : kind = 'fn'
                else: kind = 'blk'
                stack.append((kind, sig_start or n, head[-80:]))
                text_since = ''; sig_start = None
            elif c == '}':
                if stack:
                    kind, start, head = stack.pop()
                    if kind == 'fn' and n - start + 1 > limit:
                        res.append((n - start + 1, path, start, head))
                text_since = ''; sig_start = None
            elif c == ';':
                text_since = ''; sig_start = None
            else:
                if not c.isspace() and sig_start is None: sig_start = n
                text_since += c
        text_since += ' '
    return res

limit = int(sys.argv[1])
res = []
for pattern in sys.argv[2:]:
    for f in glob.glob(pattern): res += scan(f, limit)
for r in sorted(res, reverse=True): print('%4d %s:%d  %s' % r)
