import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii } from '../../src/crypto/bytes.js';
import { rolloutPosition, type ManifestFields } from '../../src/crypto/manifest.js';
import { describeDemand, deviceNeed, PauseRule, releaseDemand, type DemandDevice } from '../../src/publish/demand.js';

const T = 1_790_000_000;
const release = {
  product: 'thermo',
  sequence: 5n,
  version: '5.0',
  created: T - 100,
  expires: T + 86400,
  manifestId: new Uint8Array(32).fill(5),
} as unknown as ManifestFields & { manifestId: Uint8Array };

function dev(over: Partial<DemandDevice> = {}): DemandDevice {
  return { deviceId: 'dev-1', deviceClass: 'sensor', installedSequence: 4n, state: 'installed', ...over };
}

/** A device id inside (or outside) a rollout of `bp` basis points of `release`. */
function idAt(bp: number, inside: boolean): string {
  for (let i = 0; ; i++) if (rolloutPosition(release, ascii(`d-${i}`)) < bp === inside) return `d-${i}`;
}

test('deviceNeed: the report decides where the device is with the release; the rollout policy decides for the rest', () => {
  const cases: [string, Partial<DemandDevice>, string][] = [
    ['runs it', { installedSequence: 5n }, 'received'],
    ['runs a later one', { installedSequence: 6n }, 'received'],
    ['receiving it', { state: 'receiving', pendingSequence: 5n }, 'needing'],
    ['waiting for its wave', { state: 'waiting', pendingSequence: 5n }, 'waiting'],
    ['installing it', { state: 'installing', pendingSequence: 5n }, 'received'],
    ['confirming it', { state: 'confirming', pendingSequence: 5n }, 'received'],
    ['rolled it back', { state: 'rolled-back', pendingSequence: 5n }, 'gaveUp'],
    ['failed it', { state: 'failed', pendingSequence: 5n }, 'gaveUp'],
    ['receiving a later one', { state: 'receiving', pendingSequence: 6n }, 'outside'],
    ['rolled a later one back: this one is still due', { state: 'rolled-back', pendingSequence: 6n }, 'needing'],
    ['idle on an older version (e.g. back from offline)', { state: 'idle' }, 'needing'],
  ];
  for (const [what, over, want] of cases) assert.equal(deviceNeed(release, dev(over), T), want, what);
});

test('deviceNeed applies the signed rollout policy with the reported id and class', () => {
  const pct = { ...release, rolloutBasisPoints: 2500 };
  assert.equal(deviceNeed(pct, dev({ deviceId: idAt(2500, true) }), T), 'needing');
  assert.equal(deviceNeed(pct, dev({ deviceId: idAt(2500, false) }), T), 'outside');
  const cls = { ...release, deviceClasses: ['gateway'] };
  assert.equal(deviceNeed(cls, dev(), T), 'outside');
  assert.equal(deviceNeed(cls, dev({ deviceClass: 'gateway' }), T), 'needing');
  // A later wave: waiting now, needing once it opens.
  const waves = { ...release, rolloutWaves: [{ start: T - 10, basisPoints: 1 }, { start: T + 3600, basisPoints: 10_000 }] };
  const late = idAt(1, false);
  assert.equal(deviceNeed(waves, dev({ deviceId: late }), T), 'waiting');
  assert.equal(deviceNeed(waves, dev({ deviceId: late }), T + 3600), 'needing');
});

test('releaseDemand counts every device once; describeDemand says why in one line', () => {
  const c = releaseDemand(release, [dev({ installedSequence: 5n }), dev({ installedSequence: 5n }), dev({ state: 'rolled-back', pendingSequence: 5n }), dev({ state: 'receiving', pendingSequence: 5n })], T);
  assert.deepEqual(c, { live: 4, needing: 1, received: 2, waiting: 0, outside: 0, gaveUp: 1 });
  assert.equal(describeDemand('serving', c), '1 of 4 devices heard need it (2 have it, 1 gave up)');
  assert.equal(describeDemand('paused', { ...c, needing: 0 }), 'none of the 4 devices heard needs it (2 have it, 1 gave up)');
  assert.equal(describeDemand('paused', releaseDemand(release, [], T)), 'no enrolled device heard');
});

test('PauseRule: no pause before the grace period ends, a hold before pausing, resumed at the first need', () => {
  const none = { live: 3, needing: 0, received: 3, waiting: 0, outside: 0, gaveUp: 0 };
  const one = { ...none, needing: 1, received: 2 };
  const r = new PauseRule({ graceMs: 10_000, holdMs: 2000 }, 0);
  assert.equal(r.update(none, 1000), 'serving');
  assert.match(r.pending(1000) ?? '', /listening to the fleet for 9 s more/);
  assert.equal(r.update(none, 9999), 'serving', 'still in the grace period');
  assert.equal(r.update(none, 9999), 'serving');
  assert.equal(r.update(none, 10_000), 'paused', 'unneeded for 9 s, grace over');
  assert.equal(r.pending(10_000), undefined);
  assert.equal(r.update(one, 10_500), 'serving', 'a device needs it again');
  assert.equal(r.pending(10_500), undefined, 'served because it is needed');
  assert.equal(r.update(none, 11_000), 'serving', 'the hold starts again');
  assert.equal(r.pending(11_500), 'nobody needs it; pausing in 2 s');
  assert.equal(r.update(none, 12_999), 'serving');
  assert.equal(r.update(none, 13_000), 'paused');
});

test('deviceNeed keeps each device\'s rollout position in the cache it is given, and decides by it', () => {
  const pct = { ...release, rolloutBasisPoints: 2500 };
  const outside = idAt(2500, false);
  const cache = new Map<string, number>();
  assert.equal(deviceNeed(pct, dev({ deviceId: outside }), T, cache), 'outside');
  assert.equal(cache.get(outside), rolloutPosition(pct, ascii(outside)));
  // The cached position is what counts (the hash is not computed again).
  cache.set(outside, 0);
  assert.equal(deviceNeed(pct, dev({ deviceId: outside }), T, cache), 'needing');
  assert.deepEqual(releaseDemand(pct, [dev({ deviceId: outside })], T, cache), { live: 1, needing: 1, received: 0, waiting: 0, outside: 0, gaveUp: 0 });
});
