// Whether anybody still needs a release's data (docs/publish.md "Pausing"): I/O-free. The
// publisher hears the devices' signed status reports (src/fleet) and, for each release it serves,
// sorts every enrolled device heard recently into one of the DemandCounts buckets. The rules read
// the same report fields the agent writes (src/agent/report.ts) and apply the release's own signed
// rollout policy with the device's id and class, as the device does (src/agent/rollout.ts).
import { ascii } from '../crypto/bytes.js';
import { rolloutPosition, type ManifestFields } from '../crypto/manifest.js';
import { decideRollout } from '../agent/rollout.js';
import type { AgentState } from '../wire/status.js';
import type { DemandCounts } from '../wire/beacon.js';

/** What the demand rules read of a device's last report. */
export interface DemandDevice {
  deviceId: string;
  deviceClass: string;
  installedSequence: bigint;
  state: AgentState;
  pendingSequence?: bigint | undefined;
}

export type DeviceNeed = 'needing' | 'received' | 'waiting' | 'outside' | 'gaveUp';

/** Nothing has failed on a device as far as the publisher can tell (its reports say so instead). */
const NONE: ReadonlySet<string> = new Set();
const NO_ID = new Uint8Array(0);

/** Rollout positions of one release by device id: a hash each, computed once per device. */
export type PositionCache = Map<string, number>;

/** The states in which an agent has the release's data already. */
const HAS_DATA: ReadonlySet<AgentState> = new Set<AgentState>(['verifying', 'installing', 'rebooting', 'confirming', 'installed']);

/**
 * Where one device stands with one release, at `now` (unix seconds, the publisher's clock):
 * - running this sequence or a later one, or working on it past the download: `received`;
 * - working on it: `needing` while receiving; `waiting` while it waits for its wave, window or
 *   switch time; `gaveUp` after it failed or rolled it back (an agent that tries again reports
 *   receiving, which counts as needing at once);
 * - working on a later release: `outside` (that release supersedes this one);
 * - otherwise the release's rollout policy decides, with the device's id and class: take is
 *   `needing`, wait is `waiting`, skip is `outside`. Hardware is not in the reports, so a device
 *   skipped for hardware here but matching in truth starts receiving on the next beacon, and its
 *   report resumes the data.
 */
export function deviceNeed(release: ManifestFields & { manifestId: Uint8Array }, d: DemandDevice, now: number, positions?: PositionCache): DeviceNeed {
  const seq = release.sequence;
  if (d.installedSequence >= seq) return 'received';
  if (d.pendingSequence === seq) {
    if (d.state === 'receiving') return 'needing';
    if (d.state === 'waiting') return 'waiting';
    if (d.state === 'failed' || d.state === 'rolled-back') return 'gaveUp';
    if (HAS_DATA.has(d.state)) return 'received';
  } else if (d.pendingSequence !== undefined && d.pendingSequence > seq && d.state !== 'failed' && d.state !== 'rolled-back') {
    return 'outside';
  }
  let position = positions?.get(d.deviceId);
  if (position === undefined) {
    position = rolloutPosition(release, ascii(d.deviceId));
    positions?.set(d.deviceId, position);
  }
  const profile = { id: NO_ID, position, product: release.product, installedSequence: d.installedSequence, failed: NONE, timeFloor: 0, ...(d.deviceClass ? { deviceClass: d.deviceClass } : {}) };
  const decision = decideRollout(release, profile, now);
  return decision.action === 'take' ? 'needing' : decision.action === 'wait' ? 'waiting' : 'outside';
}

export function emptyDemand(): DemandCounts {
  return { live: 0, needing: 0, received: 0, waiting: 0, outside: 0, gaveUp: 0 };
}

/** The counts over `devices` (the enrolled devices heard within the quiet time). */
export function releaseDemand(release: ManifestFields & { manifestId: Uint8Array }, devices: Iterable<DemandDevice>, now: number, positions?: PositionCache): DemandCounts {
  const c = emptyDemand();
  for (const d of devices) {
    c.live += 1;
    c[deviceNeed(release, d, now, positions)] += 1;
  }
  return c;
}

/** One line on why a release is served or paused, for the STATE beacon and the dashboard (at most 200 bytes). */
export function describeDemand(state: 'serving' | 'paused', c: DemandCounts): string {
  const parts = [`${c.received} have it`, `${c.waiting} waiting`, `${c.outside} outside the rollout`, `${c.gaveUp} gave up`].filter((p) => !p.startsWith('0 '));
  const of = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  if (state === 'serving') return `${c.needing} of ${c.live} devices heard need it${of}`;
  return c.live === 0 ? 'no enrolled device heard' : `none of the ${c.live} devices heard needs it${of}`;
}

export interface PauseRuleOptions {
  /** Nothing is paused until the publisher has listened this long (every live device reported). */
  graceMs: number;
  /** A release is paused once nobody has needed it for this long (default 5000 ms). */
  holdMs?: number;
}

/**
 * The pause decision for one release over time, with its hold: serving while anybody needs it,
 * paused once nobody has for `holdMs` after the grace period; resumed at the first need.
 */
export class PauseRule {
  readonly graceMs: number;
  readonly holdMs: number;
  readonly #since: number;
  #unneededSince: number | undefined;
  #state: 'serving' | 'paused' = 'serving';

  constructor(opts: PauseRuleOptions, startedAt: number) {
    this.graceMs = opts.graceMs;
    this.holdMs = opts.holdMs ?? 5000;
    this.#since = startedAt;
  }

  get state(): 'serving' | 'paused' {
    return this.#state;
  }

  /** Feed the current counts; returns the state to be in now (ms clock). */
  update(c: DemandCounts, now: number): 'serving' | 'paused' {
    if (c.needing > 0) {
      this.#unneededSince = undefined;
      this.#state = 'serving';
      return this.#state;
    }
    this.#unneededSince ??= now;
    if (now - this.#since >= this.graceMs && now - this.#unneededSince >= this.holdMs) this.#state = 'paused';
    return this.#state;
  }

  /** Why a release nobody needs is still served: the grace period or the hold has not ended. */
  pending(now: number): string | undefined {
    if (this.#state !== 'serving' || this.#unneededSince === undefined) return undefined;
    if (now - this.#since < this.graceMs) return `listening to the fleet for ${Math.ceil((this.graceMs - (now - this.#since)) / 1000)} s more before pausing`;
    return `nobody needs it; pausing in ${Math.max(1, Math.ceil((this.holdMs - (now - this.#unneededSince)) / 1000))} s`;
  }
}
