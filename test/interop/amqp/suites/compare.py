"""Prints, for each suite run by run.sh, the pass/fail/skip counts per broker and the tests
that pass on RabbitMQ but not on yard (and the reverse). Arguments: the results directory and
the suites' names."""
import os
import sys

out, suites = sys.argv[1], sys.argv[2:]


def load(broker, suite):
    results, timeouts = {}, []
    path = os.path.join(out, broker, suite + '.tsv')
    if not os.path.exists(path):
        return None, []
    for line in open(path):
        status, name = line.rstrip('\n').split('\t', 1)
        if status == 'TIMEOUT':
            timeouts.append(name)
        elif results.get(name) != 'fail':  # a test that failed once (say, in teardown) failed
            results[name] = status
    return results, timeouts


for suite in suites:
    runs = {b: load(b, suite) for b in ('rabbitmq', 'yard')}
    print('== %s' % suite)
    for broker, (results, timeouts) in runs.items():
        if results is None:
            continue
        counts = {s: sum(1 for v in results.values() if v == s) for s in ('ok', 'fail', 'skip')}
        print('%-9s %d passed, %d failed, %d skipped (of %d)%s' % (
            broker + ':', counts['ok'], counts['fail'], counts['skip'], len(results),
            '; files killed by their timeout: ' + ', '.join(timeouts) if timeouts else ''))
    rabbit, yard = runs['rabbitmq'][0], runs['yard'][0]
    if rabbit is None or yard is None:
        continue
    for title, a, b in (('pass on RabbitMQ, not on yard', rabbit, yard),
                        ('pass on yard, not on RabbitMQ', yard, rabbit)):
        names = sorted(n for n, s in a.items() if s == 'ok' and b.get(n, 'missing') not in ('ok', 'skip'))
        print('-- %s: %d' % (title, len(names)))
        for n in names:
            print('   %s%s' % (n, '' if n in b else ' (not reported: its file was killed)'))
