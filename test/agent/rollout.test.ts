// The rollout decision (src/agent/rollout.ts): signed policy, device profile and time in, take /
// skip / wait out; and the rule for a device without a trustworthy clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inRollout, rolloutPosition, type ManifestFields } from '../../src/crypto/manifest.js';
import { decideRollout, type DeviceProfile } from '../../src/agent/rollout.js';
import { release } from '../crypto/fixtures.js';

const ascii = (s: string) => new TextEncoder().encode(s);

function manifest(extra: Partial<ManifestFields> = {}, created = 100): ManifestFields & { manifestId: Uint8Array } {
  return { ...release(5n, { created, expires: 1_000_000 }).fields, ...extra, manifestId: new Uint8Array(32).fill(7) };
}

function device(id: string, extra: Partial<DeviceProfile> = {}): DeviceProfile {
  return { id: ascii(id), product: 'sensor-v2', installedSequence: 4n, failed: new Set(), timeFloor: 0, deviceClass: 'gateway', hardware: 'rev-c', ...extra };
}

/** A device id whose rollout place for `m` lies in [lo, hi). */
function idIn(m: ManifestFields, lo: number, hi: number): string {
  for (let i = 0; ; i++) {
    const id = `dev-${i}`;
    const p = rolloutPosition(m, ascii(id));
    if (p >= lo && p < hi) return id;
  }
}

test('product, sequence, failed releases, device class and hardware', () => {
  const m = manifest({ deviceClasses: ['gateway', 'sensor'], hardware: ['rev-b', 'rev-c'] });
  assert.deepEqual(decideRollout(m, device('a'), 200), { action: 'take' });
  assert.equal(decideRollout({ ...m, product: 'other' }, device('a'), 200).action, 'skip');
  const skip = (d: DeviceProfile) => {
    const r = decideRollout(m, d, 200);
    return r.action === 'skip' ? r.reason : r.action;
  };
  assert.equal(skip(device('a', { installedSequence: 5n })), 'not-newer');
  assert.equal(skip(device('a', { failed: new Set(['07'.repeat(32)]) })), 'failed-before');
  assert.equal(skip(device('a', { deviceClass: 'meter' })), 'device-class');
  assert.equal(skip(device('a', { deviceClass: undefined })), 'device-class');
  assert.equal(skip(device('a', { hardware: 'rev-a' })), 'hardware');
  // No selector in the manifest: every class and board takes it.
  assert.deepEqual(decideRollout(manifest(), device('a', { deviceClass: 'meter', hardware: 'rev-z' }), 200), { action: 'take' });
});

test('single share: the decision is inRollout of the manifest, about the signed fraction of devices', () => {
  const m = manifest({ rolloutBasisPoints: 2500 });
  let taken = 0;
  for (let i = 0; i < 2000; i++) {
    const d = device(`unit-${i}`);
    const r = decideRollout(m, d, 200);
    assert.equal(r.action === 'take', inRollout(m, d.id));
    if (r.action === 'take') taken++;
    else assert.equal(r.action === 'skip' && r.reason, 'not-in-rollout');
  }
  assert.ok(taken > 400 && taken < 600, `${taken} of 2000 at 25 %`);
});

test('waves with a clock: the share in force at now; a device waits for the wave that includes it', () => {
  const waves = [
    { start: 1000, basisPoints: 1000 },
    { start: 2000, basisPoints: 5000 },
    { start: 3000, basisPoints: 9000 },
  ];
  const m = manifest({ rolloutWaves: waves });
  const early = device(idIn(m, 0, 1000));
  const middle = device(idIn(m, 1000, 5000));
  const never = device(idIn(m, 9000, 10000));
  assert.deepEqual(decideRollout(m, early, 500), { action: 'wait', until: 1000, detail: "this device's wave starts at 1000" });
  assert.deepEqual(decideRollout(m, early, 1000), { action: 'take' });
  assert.equal(decideRollout(m, middle, 1500).action, 'wait');
  assert.equal((decideRollout(m, middle, 1500) as { until: number }).until, 2000);
  assert.deepEqual(decideRollout(m, middle, 2500), { action: 'take' });
  const r = decideRollout(m, never, 5000);
  assert.equal(r.action === 'skip' && r.reason, 'not-in-rollout');
  // A device once in stays in: shares never decrease.
  for (const t of [1000, 2000, 3000, 9999]) assert.equal(decideRollout(m, early, t).action, 'take');
});

test('activation window and switch-at with a clock', () => {
  const m = manifest({ activation: { notBefore: 1000, notAfter: 2000 }, switchAt: 1500 });
  const d = device('a');
  assert.deepEqual(decideRollout(m, d, 900), { action: 'wait', until: 1000, detail: 'activation window opens at 1000' });
  assert.deepEqual(decideRollout(m, d, 1200), { action: 'take', switchAt: 1500 });
  assert.deepEqual(decideRollout(m, d, 1600), { action: 'take' });
  const closed = decideRollout(m, d, 2000);
  assert.equal(closed.action === 'skip' && closed.reason, 'window-closed');
  // A wave that would start after the window closes never comes.
  const late = manifest({ activation: { notBefore: 0, notAfter: 1500 }, rolloutWaves: [{ start: 0, basisPoints: 1 }, { start: 1600, basisPoints: 10000 }] });
  const r = decideRollout(late, device(idIn(late, 1, 10000)), 100);
  assert.equal(r.action === 'skip' && r.reason, 'not-in-rollout');
});

test('no trusted clock: acts on the time floor or the release\'s own created, never waits, switches at once', () => {
  const waves = [
    { start: 1000, basisPoints: 1000 },
    { start: 2000, basisPoints: 5000 },
  ];
  // Created at 2500: the bound is past both wave starts.
  const m = manifest({ rolloutWaves: waves, switchAt: 4000 }, 2500);
  const middle = device(idIn(m, 1000, 5000));
  assert.deepEqual(decideRollout(m, middle, undefined), { action: 'take' }, 'in the wave open at the bound, no switch time');
  const out = decideRollout(m, device(idIn(m, 5000, 10000)), undefined);
  assert.equal(out.action === 'skip' && out.reason, 'not-in-rollout');
  // Created at 1500: the second wave is not open at the bound; no clock to wait with.
  const m2 = manifest({ rolloutWaves: waves }, 1500);
  const mid2 = device(idIn(m2, 1000, 5000));
  const r = decideRollout(m2, mid2, undefined);
  assert.equal(r.action === 'skip' && r.reason, 'not-in-rollout');
  // ... but a time floor from a later install moves the bound on.
  assert.deepEqual(decideRollout(m2, { ...mid2, timeFloor: 2100 }, undefined), { action: 'take' });
  // Activation window: judged at the bound.
  const w = manifest({ activation: { notBefore: 1000, notAfter: 2000 } }, 500);
  const notOpen = decideRollout(w, device('a'), undefined);
  assert.equal(notOpen.action === 'skip' && notOpen.reason, 'window-not-open');
  assert.deepEqual(decideRollout(w, device('a', { timeFloor: 1500 }), undefined), { action: 'take' });
  const closed = decideRollout(w, device('a', { timeFloor: 2000 }), undefined);
  assert.equal(closed.action === 'skip' && closed.reason, 'window-closed');
});
