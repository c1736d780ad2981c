// When to send which beacon: an I/O-free scheduler (the publisher's driver owns the timer and
// the socket). Rules, in docs/publish.md ("Rates"):
//   - every entry (a release's ANNOUNCE, or a HALT) is sent every `interval` ms;
//   - a new entry is sent at once, then `fastStart` more times `fastInterval` apart, so devices
//     already listening hear a new release or halt within seconds, then the slow rate takes over;
//   - in total at most `maxPerSecond` beacons per second, spaced at least 1000 / maxPerSecond ms
//     apart; when more entries are due than the cap allows, the one due longest goes first, so
//     every entry keeps its turn and only the period stretches.
import { UsageError } from '../errors.js';

export interface SchedulerOptions {
  /** ms between two beacons of one entry (default 5000). */
  interval?: number;
  /** Extra beacons right after an entry is added (default 2), `fastInterval` ms apart (default 1000). */
  fastStart?: number;
  fastInterval?: number;
  /** Cap on all beacons together, per second (default 10). */
  maxPerSecond?: number;
}

interface Entry {
  due: number;
  fastLeft: number;
  /** This entry's own interval (a paused release's slower beacon), else the scheduler's. */
  interval: number | undefined;
  /** Insertion order: breaks ties between entries due at the same time. */
  order: number;
}

export class BeaconScheduler {
  readonly interval: number;
  readonly fastStart: number;
  readonly fastInterval: number;
  readonly maxPerSecond: number;
  readonly #entries = new Map<string, Entry>();
  #lastSent: number | undefined;
  #order = 0;

  constructor(opts: SchedulerOptions = {}) {
    this.interval = positive('interval', opts.interval ?? 5000);
    this.fastInterval = positive('fastInterval', opts.fastInterval ?? 1000);
    this.maxPerSecond = positive('maxPerSecond', opts.maxPerSecond ?? 10);
    this.fastStart = opts.fastStart ?? 2;
    if (!Number.isInteger(this.fastStart) || this.fastStart < 0 || this.fastStart > 10) throw new UsageError('fastStart must be an integer 0..10');
  }

  get size(): number {
    return this.#entries.size;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** Schedule `id` from `now` (its first beacon is due at once). Re-adding restarts its fast start. */
  add(id: string, now: number): void {
    this.#entries.set(id, { due: now, fastLeft: this.fastStart, order: this.#order++, interval: undefined });
  }

  /**
   * Give `id` its own interval (undefined: the scheduler's again). A longer one takes effect from
   * the next beacon; a shorter one brings the next beacon forward to at most `ms` after `now`.
   */
  setInterval(id: string, ms: number | undefined, now: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    if (ms !== undefined) positive('interval', ms);
    e.interval = ms;
    const every = ms ?? this.interval;
    if (e.fastLeft === 0 && e.due > now + every) e.due = now + every;
  }

  remove(id: string): boolean {
    return this.#entries.delete(id);
  }

  /** Which beacon to send next and when (never before `now`); undefined when nothing is scheduled. */
  next(now: number): { id: string; at: number } | undefined {
    let best: [string, Entry] | undefined;
    for (const e of this.#entries) {
      if (!best || e[1].due < best[1].due || (e[1].due === best[1].due && e[1].order < best[1].order)) best = e;
    }
    if (!best) return undefined;
    const spacing = 1000 / this.maxPerSecond;
    const at = Math.max(now, best[1].due, this.#lastSent === undefined ? -Infinity : this.#lastSent + spacing);
    return { id: best[0], at };
  }

  /** Record that `id`'s beacon went out at `at`; its next one is due an interval (or fast interval) later. */
  sent(id: string, at: number): void {
    const e = this.#entries.get(id);
    this.#lastSent = this.#lastSent === undefined ? at : Math.max(this.#lastSent, at);
    if (!e) return;
    const every = e.interval ?? this.interval;
    if (e.fastLeft > 0) {
      e.fastLeft -= 1;
      e.due = at + Math.min(this.fastInterval, every);
    } else {
      e.due = at + every;
    }
    e.order = this.#order++;
  }
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new UsageError(`${name} must be a positive number`);
  return v;
}
