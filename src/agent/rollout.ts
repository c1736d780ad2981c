// The rollout decision (docs/agent.md "Rollout rules"): pure, no clock, no I/O. Given a verified
// manifest, the device and the time, it says take, skip (with a reason) or wait (until a time).
//
// Without a trustworthy clock (`now` undefined) the device still knows a lower bound of the time:
// the highest `created` it has seen, this manifest's included (a signed release cannot arrive
// before it was made). It acts on that bound: it takes a wave share or an activation window only
// when already open at the bound, never waits for a time it cannot measure, treats a window as
// open until the bound passes its end, and switches at once instead of at switch-at.
import { rolloutPosition, type ManifestFields } from '../crypto/manifest.js';

export interface DeviceProfile {
  /** Bytes of the device id (e.g. /etc/machine-id): the rollout hash input. */
  id: Uint8Array;
  product: string;
  deviceClass?: string;
  hardware?: string;
  /** Highest sequence installed. */
  installedSequence: bigint;
  /** Manifest ids (hex) of releases that failed here: never taken again. */
  failed: ReadonlySet<string>;
  /** Highest `created` seen (the time floor of rollback.ts). */
  timeFloor: number;
  /** rolloutPosition(m, id), when the caller has it already (a publisher deciding for many devices caches it per release). */
  position?: number;
}

export type SkipReason =
  | 'wrong-product'
  | 'not-newer'
  | 'failed-before'
  | 'device-class'
  | 'hardware'
  | 'window-closed'
  | 'window-not-open'
  | 'not-in-rollout';

export type RolloutDecision =
  | { action: 'take'; /** Switch at this time (unix seconds); absent = at once. */ switchAt?: number }
  | { action: 'skip'; reason: SkipReason; detail: string }
  | { action: 'wait'; until: number; detail: string };

export function decideRollout(m: ManifestFields & { manifestId: Uint8Array }, device: DeviceProfile, now: number | undefined): RolloutDecision {
  const skip = (reason: SkipReason, detail: string): RolloutDecision => ({ action: 'skip', reason, detail });
  if (m.product !== device.product) return skip('wrong-product', `release is for '${m.product}'`);
  if (m.sequence <= device.installedSequence) return skip('not-newer', `sequence ${m.sequence} is not above installed ${device.installedSequence}`);
  const id = Buffer.from(m.manifestId).toString('hex');
  if (device.failed.has(id)) return skip('failed-before', `release ${m.version} failed on this device before`);
  if (m.deviceClasses && (device.deviceClass === undefined || !m.deviceClasses.includes(device.deviceClass))) {
    return skip('device-class', `release is for device classes ${m.deviceClasses.join(', ')}`);
  }
  if (m.hardware && (device.hardware === undefined || !m.hardware.includes(device.hardware))) {
    return skip('hardware', `release is for hardware ${m.hardware.join(', ')}`);
  }
  // The time the decision is made at: the clock, or the lower bound a clockless device has.
  const clock = now !== undefined;
  const t = clock ? now : Math.max(device.timeFloor, m.created);
  const w = m.activation;
  if (w) {
    if (t >= w.notAfter) return skip('window-closed', `activation window closed at ${w.notAfter}`);
    if (t < w.notBefore) {
      return clock
        ? { action: 'wait', until: w.notBefore, detail: `activation window opens at ${w.notBefore}` }
        : skip('window-not-open', `activation window opens at ${w.notBefore}; no trusted clock to wait for it`);
    }
  }
  const place = device.position ?? rolloutPosition(m, device.id);
  if (m.rolloutWaves) {
    const inForce = m.rolloutWaves.filter((x) => x.start <= t).pop();
    if (!inForce || place >= inForce.basisPoints) {
      // The first wave that includes this device, if any.
      const mine = m.rolloutWaves.find((x) => place < x.basisPoints);
      if (!mine) return skip('not-in-rollout', `not among the ${(m.rolloutWaves.at(-1)?.basisPoints ?? 0) / 100} % of the last wave`);
      if (!clock) return skip('not-in-rollout', `this device's wave starts at ${mine.start}; no trusted clock to wait for it`);
      if (w && mine.start >= w.notAfter) return skip('not-in-rollout', `this device's wave starts after the activation window`);
      return { action: 'wait', until: mine.start, detail: `this device's wave starts at ${mine.start}` };
    }
  } else if (m.rolloutBasisPoints !== undefined && place >= m.rolloutBasisPoints) {
    return skip('not-in-rollout', `not among the ${m.rolloutBasisPoints / 100} % of devices`);
  }
  if (clock && m.switchAt !== undefined && m.switchAt > t) return { action: 'take', switchAt: m.switchAt };
  return { action: 'take' };
}
