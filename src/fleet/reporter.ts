// The device side of fleet status, I/O-free: it decides *when* to report; a driver
// (src/fleet/reporter-driver.ts) stamps, signs and sends. docs/fleet-status.md "Rate budget".
import { UsageError } from '../errors.js';
import { AGENT_STATES, encodingLength, IP_UDP_OVERHEAD, LIMITS, type AgentState, type ReportReason, type StatusBody } from '../wire/status.js';

/** What the agent tells the reporter (`reporter.update(snapshot)`): its state as plain data. */
export interface DeviceSnapshot {
  deviceId: string;
  product: string;
  deviceClass?: string;
  installedVersion: string;
  installedSequence: bigint;
  state: AgentState;
  /** 0..1 while receiving / installing. Progress alone is not a state change (docs). */
  progress?: number;
  pendingVersion?: string;
  pendingSequence?: bigint;
  lastError?: string;
  agentVersion: string;
}

/**
 * The channel's bandwidth budget and the fleet it is shared by. Every device computes its share
 * period H = max(minIntervalMs, fleetSize * wireBytes * 8 / bitsPerSecond), with wireBytes its own
 * report plus IPv6 and UDP headers: one report per H per device is the whole budget. A token
 * bucket refilled once per H (capacity `burst`) limits every report, so a device sends at most
 * burst + T / H reports in any window of T ms and the fleet at most budget x (1 + burst x H / T).
 * Heartbeats come every H / heartbeatShare on average, so an idle fleet uses heartbeatShare of
 * the budget and the rest is headroom for the change reports of a rollout.
 */
export interface RateBudget {
  /** Bandwidth budget of the status channel, bits per second (default 256 000). */
  bitsPerSecond?: number;
  /** Number of devices sharing the channel (default 1000). */
  fleetSize?: number;
  /** Lower bound of H in ms (default 30 000). */
  minIntervalMs?: number;
  /** Token bucket capacity: reports a device may send back to back (default 3). */
  burst?: number;
  /** Heartbeat jitter: each heartbeat comes after (H / heartbeatShare) x (1 +- jitter) (default 0.25). */
  jitter?: number;
  /** Fraction of the budget idle heartbeats use, (0, 1] (default 0.75). */
  heartbeatShare?: number;
}

export const DEFAULT_BUDGET: Required<RateBudget> = { bitsPerSecond: 256_000, fleetSize: 1000, minIntervalMs: 30_000, burst: 3, jitter: 0.25, heartbeatShare: 0.75 };

export function checkBudget(b: RateBudget): Required<RateBudget> {
  const r = { ...DEFAULT_BUDGET, ...b };
  if (!(Number.isFinite(r.bitsPerSecond) && r.bitsPerSecond > 0)) throw new UsageError(`budget: bitsPerSecond must be > 0, got ${r.bitsPerSecond}`);
  if (!(Number.isSafeInteger(r.fleetSize) && r.fleetSize >= 1)) throw new UsageError(`budget: fleetSize must be an integer >= 1, got ${r.fleetSize}`);
  if (!(Number.isFinite(r.minIntervalMs) && r.minIntervalMs > 0)) throw new UsageError(`budget: minIntervalMs must be > 0, got ${r.minIntervalMs}`);
  if (!(Number.isFinite(r.burst) && r.burst >= 1)) throw new UsageError(`budget: burst must be >= 1, got ${r.burst}`);
  if (!(Number.isFinite(r.jitter) && r.jitter >= 0 && r.jitter < 1)) throw new UsageError(`budget: jitter must be within [0, 1), got ${r.jitter}`);
  if (!(Number.isFinite(r.heartbeatShare) && r.heartbeatShare > 0 && r.heartbeatShare <= 1)) throw new UsageError(`budget: heartbeatShare must be within (0, 1], got ${r.heartbeatShare}`);
  return r;
}

/** The share period H in ms for a report of `reportBytes` bytes (UDP payload). */
export function heartbeatInterval(budget: RateBudget, reportBytes: number): number {
  const b = checkBudget(budget);
  return Math.max(b.minIntervalMs, (b.fleetSize * (reportBytes + IP_UDP_OVERHEAD) * 8 * 1000) / b.bitsPerSecond);
}

/**
 * How long the collector waits before it calls a device quiet: three of the longest heartbeat
 * gaps, 3 x (H / heartbeatShare) x (1 + jitter), for a nominal report of `reportBytes`.
 */
export function quietAfter(budget: RateBudget, reportBytes = 200): number {
  const b = checkBudget(budget);
  return Math.ceil((heartbeatInterval(b, reportBytes) / b.heartbeatShare) * (1 + b.jitter) * 3);
}

/** A report the reporter wants sent now; the driver adds the counter and key and signs it. */
export type DueReport = Omit<StatusBody, 'counter' | 'publicKey'>;

export interface StatusReporterOptions {
  budget?: RateBudget;
  /** Uniform [0, 1) for the heartbeat jitter (default Math.random); tests pass a seeded one. */
  random?: () => number;
  /** When the device started, ms (uptime is counted from here; default the first update's now). */
  startedAt?: number;
}

const ZERO_KEY = new Uint8Array(32);

function differs(a: DeviceSnapshot, b: DeviceSnapshot): boolean {
  return (
    a.deviceId !== b.deviceId ||
    a.product !== b.product ||
    (a.deviceClass ?? '') !== (b.deviceClass ?? '') ||
    a.installedVersion !== b.installedVersion ||
    a.installedSequence !== b.installedSequence ||
    a.state !== b.state ||
    (a.pendingVersion ?? '') !== (b.pendingVersion ?? '') ||
    a.pendingSequence !== b.pendingSequence ||
    (a.lastError ?? '') !== (b.lastError ?? '') ||
    a.agentVersion !== b.agentVersion
  );
}

export class StatusReporter {
  #budget: Required<RateBudget>;
  readonly #random: () => number;
  #startedAt: number | undefined;
  #snapshot: DeviceSnapshot | undefined;
  #pending: ReportReason | undefined;
  #tokens: number;
  #refilledAt: number | undefined;
  #heartbeatAt = Infinity;
  #intervalMs: number;

  constructor(opts: StatusReporterOptions = {}) {
    this.#budget = checkBudget(opts.budget ?? {});
    this.#random = opts.random ?? Math.random;
    this.#startedAt = opts.startedAt;
    this.#tokens = this.#budget.burst;
    this.#intervalMs = this.#budget.minIntervalMs;
  }

  /** The current share period H, ms (heartbeats come every H / heartbeatShare on average). */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  get snapshot(): DeviceSnapshot | undefined {
    return this.#snapshot;
  }

  /** A new budget (e.g. a changed configuration); applies from the next heartbeat. */
  setBudget(budget: RateBudget): void {
    this.#budget = checkBudget(budget);
    this.#tokens = Math.min(this.#tokens, this.#budget.burst);
    this.#recomputeInterval();
  }

  /** The agent's new state. Returns whether it is a change worth a report (sent when a token allows). */
  changed(snapshot: DeviceSnapshot, now: number): boolean {
    if (!AGENT_STATES.includes(snapshot.state)) throw new UsageError(`unknown agent state '${String(snapshot.state)}'`);
    const next = { ...snapshot };
    // Free text from the agent: cut to the field's limit on a character boundary rather than refuse.
    if (next.lastError !== undefined) next.lastError = truncateUtf8(next.lastError, LIMITS.lastError);
    let bytes: number;
    try {
      bytes = encodingLength(this.#body(next, 'heartbeat', 0));
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    this.#startedAt ??= now;
    this.#refill(now);
    const prev = this.#snapshot;
    this.#snapshot = next;
    this.#intervalMs = heartbeatInterval(this.#budget, bytes);
    if (prev === undefined) {
      this.#pending = 'start';
      return true;
    }
    if (differs(prev, snapshot)) {
      this.#pending ??= 'change';
      return true;
    }
    return false;
  }

  /** Alias of changed(): the agent-facing name. */
  update(snapshot: DeviceSnapshot, now: number): boolean {
    return this.changed(snapshot, now);
  }

  /** The report to send now, if one is due and the token bucket allows it. */
  next(now: number): DueReport | undefined {
    const s = this.#snapshot;
    if (s === undefined) return undefined;
    this.#refill(now);
    const reason: ReportReason | undefined = this.#pending ?? (now >= this.#heartbeatAt ? 'heartbeat' : undefined);
    if (reason === undefined || this.#tokens < 1) return undefined;
    this.#tokens -= 1;
    this.#pending = undefined;
    const j = this.#budget.jitter;
    // Every report restarts the heartbeat timer: a device in the middle of a rollout, reporting
    // changes, needs no heartbeats on top.
    this.#heartbeatAt = now + (this.#intervalMs / this.#budget.heartbeatShare) * (1 + j * (2 * this.#random() - 1));
    const { counter: _counter, publicKey: _key, ...due } = this.#body(s, reason, now);
    return due;
  }

  /** When next() should be called again (ms); Infinity before the first snapshot. */
  wakeAt(now: number): number {
    if (this.#snapshot === undefined) return Infinity;
    this.#refill(now);
    const due = this.#pending !== undefined ? now : this.#heartbeatAt;
    const tokenAt = this.#tokens >= 1 ? now : now + (1 - this.#tokens) * this.#intervalMs;
    return Math.max(due, tokenAt);
  }

  #refill(now: number): void {
    if (this.#refilledAt !== undefined && now > this.#refilledAt) {
      this.#tokens = Math.min(this.#budget.burst, this.#tokens + (now - this.#refilledAt) / this.#intervalMs);
    }
    if (this.#refilledAt === undefined || now > this.#refilledAt) this.#refilledAt = now;
  }

  #recomputeInterval(): void {
    const s = this.#snapshot;
    const bytes = s ? encodingLength(this.#body(s, 'heartbeat', 0)) : 200;
    this.#intervalMs = heartbeatInterval(this.#budget, bytes);
  }

  #body(s: DeviceSnapshot, reason: ReportReason, now: number): DueReport & { counter: bigint; publicKey: Uint8Array } {
    const d: DueReport & { counter: bigint; publicKey: Uint8Array } = {
      reason,
      counter: 0n,
      publicKey: ZERO_KEY,
      time: Math.max(0, Math.floor(now)),
      uptime: Math.min(0xffffffff, Math.max(0, Math.floor((now - (this.#startedAt ?? now)) / 1000))),
      state: s.state,
      installedSequence: s.installedSequence,
      deviceId: s.deviceId,
      product: s.product,
      deviceClass: s.deviceClass ?? '',
      installedVersion: s.installedVersion,
      agentVersion: s.agentVersion,
    };
    if (s.progress !== undefined) d.progress = Math.min(1, Math.max(0, s.progress));
    if (s.pendingVersion !== undefined || s.pendingSequence !== undefined) {
      d.pendingVersion = s.pendingVersion ?? '';
      if (s.pendingSequence !== undefined) d.pendingSequence = s.pendingSequence;
    }
    if (s.lastError !== undefined && s.lastError !== '') d.lastError = s.lastError;
    return d;
  }
}

const utf8 = new TextEncoder();

/** `s` cut to at most `max` UTF-8 bytes, never inside a character. */
export function truncateUtf8(s: string, max: number): string {
  if (utf8.encode(s).length <= max) return s;
  let out = '';
  let n = 0;
  for (const ch of s) {
    const l = utf8.encode(ch).length;
    if (n + l > max) break;
    out += ch;
    n += l;
  }
  return out;
}
