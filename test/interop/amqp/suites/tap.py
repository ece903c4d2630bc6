"""Reads a TAP stream (mocha's tap reporter, or node's test runner with nested subtests) on
stdin and prints one line per test: ok, fail or skip, a tab, then the file's name given as
the argument, "::" and the test's full title. Only leaves count: a node suite's own line
(printed after its subtests) is dropped."""
import re
import sys

prefix = sys.argv[1]
point = re.compile(r'^( *)(not ok|ok) \d+(?: -)? (.*?)(?: # (SKIP|TODO)\b.*)?$')
subtest = re.compile(r'^( *)# Subtest: (.*)$')
names = {}  # indent -> subtest name open at that indent
deeper = {}  # indent -> whether a deeper test point came since the last point at this indent
for line in sys.stdin:
    line = line.rstrip('\n')
    m = subtest.match(line)
    if m:
        depth = len(m.group(1))
        names[depth] = m.group(2)
        for d in [d for d in names if d > depth]:
            del names[d]
        deeper[depth] = False
        continue
    m = point.match(line)
    if not m:
        continue
    depth = len(m.group(1))
    leaf = not deeper.get(depth, False)
    for d in list(deeper):
        if d < depth:
            deeper[d] = True
    deeper[depth] = False
    if not leaf:
        continue
    title = ' > '.join(names[d] for d in sorted(names) if d < depth)
    title = (title + ' > ' if title else '') + m.group(3)
    status = 'skip' if m.group(4) else ('ok' if m.group(2) == 'ok' else 'fail')
    print('%s\t%s::%s' % (status, prefix, title))
