import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BeaconScheduler, type SchedulerOptions } from '../../src/publish/scheduler.js';

/** Drive the scheduler as the publisher does, for `ms` of simulated time; returns the send log. */
function run(s: BeaconScheduler, from: number, ms: number): { id: string; at: number }[] {
  const log: { id: string; at: number }[] = [];
  let now = from;
  for (;;) {
    const n = s.next(now);
    if (!n || n.at >= from + ms) break;
    assert.ok(n.at >= now, 'never in the past');
    now = n.at;
    s.sent(n.id, now);
    log.push({ id: n.id, at: now });
  }
  return log;
}

function make(o: SchedulerOptions = {}): BeaconScheduler {
  return new BeaconScheduler(o);
}

test('empty scheduler has nothing to send', () => {
  assert.equal(make().next(0), undefined);
});

test('one release: sent at once, fast start, then every interval', () => {
  const s = make({ interval: 5000, fastStart: 2, fastInterval: 1000 });
  s.add('a', 100);
  const log = run(s, 100, 20_000);
  assert.deepEqual(
    log.map((e) => e.at),
    [100, 1100, 2100, 7100, 12100, 17100],
  );
});

test('many releases: each keeps its period, the total never exceeds the cap in any second', () => {
  const s = make({ interval: 2000, fastStart: 0, maxPerSecond: 5 });
  for (let i = 0; i < 20; i++) s.add(`r${i}`, 0);
  const log = run(s, 0, 60_000);
  assert.ok(log.length > 0);
  // Cap: any window of 1 s holds at most 5 beacons (spacing 200 ms).
  for (let i = 5; i < log.length; i++) assert.ok((log[i] as { at: number }).at - (log[i - 5] as { at: number }).at >= 1000 - 1e-9, `window at ${i}`);
  // 20 entries x 1/2 s would be 10/s: the cap stretches every period equally (round robin).
  const counts = new Map<string, number>();
  for (const e of log) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  assert.equal(counts.size, 20);
  const values = [...counts.values()];
  assert.ok(Math.max(...values) - Math.min(...values) <= 1, values.join(','));
  assert.ok(log.length <= 5 * 60 + 1);
});

test('few releases stay at their own interval (cap not binding), remove stops one', () => {
  const s = make({ interval: 1000, fastStart: 0, maxPerSecond: 10 });
  s.add('a', 0);
  s.add('b', 0);
  let log = run(s, 0, 10_000);
  assert.equal(log.filter((e) => e.id === 'a').length, 10);
  assert.equal(log.filter((e) => e.id === 'b').length, 10);
  assert.ok(s.remove('a'));
  const last = (log[log.length - 1] as { at: number }).at;
  log = run(s, last, 10_000);
  assert.equal(log.filter((e) => e.id === 'a').length, 0);
  assert.ok(log.filter((e) => e.id === 'b').length >= 9);
});

test('an entry added while others run is sent at once (within the cap spacing)', () => {
  const s = make({ interval: 5000, fastStart: 0, maxPerSecond: 4 });
  s.add('old', 0);
  s.sent('old', 0);
  s.add('new', 10);
  assert.deepEqual(s.next(10), { id: 'new', at: 250 });
  assert.throws(() => make({ interval: 0 }));
  assert.throws(() => make({ maxPerSecond: -1 }));
});

test('an entry with its own interval (a paused release) slows alone, and speeds up again at once', () => {
  const s = make({ interval: 1000, fastStart: 0, maxPerSecond: 10 });
  s.add('paused', 0);
  s.add('live', 0);
  s.setInterval('paused', 6000, 0);
  const log = run(s, 0, 12_000);
  assert.deepEqual(log.filter((e) => e.id === 'paused').map((e) => e.at), [0, 6000]);
  assert.equal(log.filter((e) => e.id === 'live').length, 12);
  // Back to the scheduler's interval: the next beacon comes within one interval, not 6 s later.
  s.setInterval('paused', undefined, 12_500);
  const next = run(s, 12_500, 1500).filter((e) => e.id === 'paused');
  assert.ok(next.length >= 1 && (next[0] as { at: number }).at <= 13_500, JSON.stringify(next));
});
