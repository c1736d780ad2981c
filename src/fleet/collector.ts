// The collector: joins a product's status channel, verifies each report against the registry,
// refuses replays, keeps current state and history in SQLite and emits typed events
// (docs/fleet-status.md). The publisher's STATE beacons arrive on the same channel: verified
// against the publisher's trust anchors, they keep a table of what it does with each release.
// `ingest()` is the whole decision for one datagram and touches no socket, so the simulation
// (bench/fleet.ts) and the tests drive the real code without a network.
import { EventEmitter, on } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { UsageError } from '../errors.js';
import { equalBytes, toHex } from '../crypto/bytes.js';
import { publicKeyObject } from '../crypto/keys.js';
import type { TrustStore } from '../crypto/trust.js';
import { AnnounceFilter, type ReleaseStateNotice } from '../announce/filter.js';
import { BeaconKind, DEMAND_FIELDS, MAGIC as BEACON_MAGIC, type ReleaseState } from '../wire/beacon.js';
import { resolveGroup } from '../channel/resolve.js';
import { McastSocket } from '../net/socket.js';
import { decode, MAX_STATUS_BYTES, StatusDecodeError, verify, type StatusReport } from '../wire/status.js';
import { Registry, registryStamp } from './registry.js';
import { quietAfter, type RateBudget } from './reporter.js';
import { FleetStore, isTransition, recordOf, type DeviceRecord, type HistoryEntry, type ReleaseRecord } from './store.js';
import { statusChannel } from './channel.js';

/** Why a datagram was dropped (each counted in `drops` and in the database). */
export const DROP_REASONS = ['oversized', 'malformed', 'wrong-product', 'signature', 'forged', 'replay', 'conflict', 'unknown-limit', 'publisher'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** ok: heard recently; failed: last state failed or rolled back; quiet: not heard for quietAfterMs. */
export type Health = 'ok' | 'failed' | 'quiet';

export interface DeviceView extends DeviceRecord {
  health: Health;
}

/** ok: a STATE beacon heard within the publisher quiet time; quiet: none since. */
export type ReleaseHeard = 'ok' | 'quiet';

export interface ReleaseView extends ReleaseRecord {
  heard: ReleaseHeard;
  /** What to show: the publisher's state while it is heard, `unknown` once it is quiet. */
  current: ReleaseState | 'unknown';
}

export type IngestResult =
  | { accepted: true; trusted: boolean; device: DeviceView; report: StatusReport; transition: boolean }
  /** A verified STATE beacon; `change`: its state, reason, counts, version or signer differ from the last one. */
  | { accepted: true; release: ReleaseView; change: boolean }
  | { accepted: false; reason: DropReason; detail: string; deviceId?: string };

export type CollectorEvent =
  | { type: 'report'; device: DeviceView; report: StatusReport; transition: boolean }
  | { type: 'unknown'; device: DeviceView; report: StatusReport; transition: boolean }
  | { type: 'drop'; reason: DropReason; detail: string; from?: string; deviceId?: string }
  | { type: 'quiet'; device: DeviceView }
  | { type: 'registry'; enrolled: number }
  /** A verified STATE beacon (`change` false for a repeat that says nothing new), or a release whose publisher went quiet (`change` true). */
  | { type: 'release'; release: ReleaseView; change: boolean }
  /** A viewer (`view: true`) read `changed` devices and releases that another collector wrote. */
  | { type: 'refresh'; changed: number };

export interface CollectorEvents {
  /** Every event below, in order: one stream for a dashboard. */
  event: [CollectorEvent];
  report: [Extract<CollectorEvent, { type: 'report' }>];
  unknown: [Extract<CollectorEvent, { type: 'unknown' }>];
  drop: [Extract<CollectorEvent, { type: 'drop' }>];
  quiet: [Extract<CollectorEvent, { type: 'quiet' }>];
  registry: [Extract<CollectorEvent, { type: 'registry' }>];
  refresh: [Extract<CollectorEvent, { type: 'refresh' }>];
  release: [Extract<CollectorEvent, { type: 'release' }>];
}

export interface CollectorOptions {
  product: string;
  /** SQLite database file (default ':memory:', nothing kept). */
  db?: string;
  /** Registry file (re-read when it changes) or a Registry object. Without one every device is unknown. */
  registry?: string | Registry;
  /** The budget the devices were given: sets the default quiet time (docs "Quiet devices"). */
  budget?: RateBudget;
  /** Devices not heard from for this long are quiet (default from the budget). */
  quietAfterMs?: number;
  /** Most unknown (not enrolled) devices kept; reports from further new ids are dropped (default 10 000). */
  maxUnknown?: number;
  /**
   * The publisher's trust anchors (the public keys its devices pin). With them, STATE beacons on
   * the status channel are verified and kept (`releases()`); without, every beacon is dropped.
   */
  trust?: TrustStore;
  /** A release with no STATE beacon for this long shows as `unknown` (default: quietAfterMs). */
  publisherQuietAfterMs?: number;
  /** A repeat that changes nothing but the time is written to the database at most this often (default 10 000 ms). */
  storeEveryMs?: number;
  /** Most releases kept; beyond, the lowest sequences are forgotten (default 256). */
  maxReleases?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /**
   * A viewer of `db`, which another collector writes (`iotupd dashboard --db F --follow`): opened
   * read-only, it never ingests; `refresh()` reads what changed. Trust is the writer's (no registry).
   */
  view?: boolean;
}

export interface ListenOptions {
  interface: string;
  port?: number;
  /** Explicit channel name or group instead of `iotupd/<product>/status`. */
  channel?: string;
  group?: string;
  signal?: AbortSignal;
  /** Interval of quiet checks, registry reloads and drop-count flushes (default 1000 ms). */
  tickMs?: number;
}

export interface FleetSummary {
  product: string;
  trusted: number;
  unknown: number;
  health: Record<Health, number>;
  states: Record<string, number>;
  versions: { version: string; count: number }[];
  drops: Record<DropReason, number>;
  quietAfterMs: number;
  /** Releases the publisher spoke of, by what is shown for them (`current`). */
  releases: Record<ReleaseState | 'unknown', number>;
}

interface ReleaseEntry {
  rec: ReleaseRecord;
  /** receivedAt of the copy in the database. */
  storedAt: number;
}

function releaseKey(sequence: bigint, manifestId: Uint8Array): string {
  return `${sequence}/${toHex(manifestId)}`;
}

/** Whether a new STATE beacon says anything the last one did not (apart from its times and counter). */
function releaseChanged(prev: ReleaseRecord, next: ReleaseRecord): boolean {
  return (
    prev.state !== next.state ||
    prev.reason !== next.reason ||
    prev.version !== next.version ||
    !equalBytes(prev.signerKeyId, next.signerKeyId) ||
    DEMAND_FIELDS.some((f) => prev.demand[f] !== next.demand[f])
  );
}

function zeroDrops(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
}

export class Collector extends EventEmitter<CollectorEvents> {
  readonly product: string;
  /** A read-only viewer of another collector's database (CollectorOptions.view). */
  readonly view: boolean;
  readonly store: FleetStore;
  readonly quietAfterMs: number;
  /** Drops since this collector started (the database holds the totals: `summary().drops`). */
  readonly drops: Record<DropReason, number> = zeroDrops();
  readonly #now: () => number;
  readonly #records = new Map<string, DeviceRecord>();
  readonly #quiet = new Set<string>();
  readonly #registryPath: string | undefined;
  readonly #maxUnknown: number;
  /** Records with trusted = false, kept in step with #records. */
  #unknown = 0;
  #registry: Registry;
  #registryStamp = 0;
  #keys = new Map<string, KeyObject>();
  #unflushed: Record<DropReason, number> = zeroDrops();
  #socket: McastSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly publisherQuietAfterMs: number;
  readonly #filter: AnnounceFilter | undefined;
  readonly #storeEveryMs: number;
  readonly #maxReleases: number;
  readonly #releases = new Map<string, ReleaseEntry>();
  readonly #quietReleases = new Set<string>();

  constructor(opts: CollectorOptions) {
    super();
    if (typeof opts.product !== 'string' || opts.product.length === 0) throw new UsageError('a product name is required');
    this.product = opts.product;
    this.#now = opts.now ?? Date.now;
    this.#maxUnknown = opts.maxUnknown ?? 10_000;
    if (!(Number.isInteger(this.#maxUnknown) && this.#maxUnknown >= 0)) throw new UsageError('maxUnknown must be an integer >= 0');
    this.quietAfterMs = opts.quietAfterMs ?? quietAfter(opts.budget ?? {});
    if (!(Number.isFinite(this.quietAfterMs) && this.quietAfterMs > 0)) throw new UsageError('quietAfterMs must be > 0');
    this.publisherQuietAfterMs = opts.publisherQuietAfterMs ?? this.quietAfterMs;
    if (!(Number.isFinite(this.publisherQuietAfterMs) && this.publisherQuietAfterMs > 0)) throw new UsageError('publisherQuietAfterMs must be > 0');
    this.#storeEveryMs = opts.storeEveryMs ?? 10_000;
    if (!(Number.isFinite(this.#storeEveryMs) && this.#storeEveryMs >= 0)) throw new UsageError('storeEveryMs must be >= 0');
    this.#maxReleases = opts.maxReleases ?? 256;
    if (!(Number.isInteger(this.#maxReleases) && this.#maxReleases >= 1)) throw new UsageError('maxReleases must be an integer >= 1');
    // The publisher's beacons are verified as a device verifies them, for this product; a
    // collector installs nothing, so every sequence is above its own (0). A publisher sends a
    // STATE beacon after each ANNOUNCE (at most 10 a second by default) and one on each pause or
    // resume: the verification budget leaves room for twice that.
    if (opts.trust !== undefined) this.#filter = new AnnounceFilter({ trust: opts.trust, product: opts.product, installedSequence: 0n, trustedClock: true, signerRate: 20, signerBurst: 40, verifyRate: 40, verifyBurst: 80 });
    this.view = opts.view ?? false;
    if (this.view && (opts.db === undefined || opts.db === ':memory:')) throw new UsageError('a viewer needs the database file another collector writes');
    if (this.view && opts.registry !== undefined) throw new UsageError("a viewer shows the writing collector's trust: give the registry to that collector");
    if (typeof opts.registry === 'string') {
      this.#registryPath = opts.registry;
      this.#registryStamp = registryStamp(opts.registry);
      this.#registry = Registry.load(opts.registry, true);
    } else this.#registry = opts.registry ?? new Registry();
    this.store = new FleetStore(opts.db ?? ':memory:', { product: opts.product, readonly: this.view });
    for (const d of this.store.all()) {
      this.#records.set(d.deviceId, d);
      if (!d.trusted) this.#unknown += 1;
    }
    if (!this.view) this.#applyRegistry();
    const now = this.#now();
    for (const d of this.#records.values()) if (now - d.lastSeen > this.quietAfterMs) this.#quiet.add(d.deviceId);
    for (const r of this.store.releases()) {
      const key = releaseKey(r.sequence, r.manifestId);
      this.#releases.set(key, { rec: r, storedAt: r.receivedAt });
      // The filter's replay table starts empty; the counters kept in the database fill it.
      this.#filter?.rememberCounter(r.signerKeyId, r.counter);
      if (now - r.receivedAt > this.publisherQuietAfterMs) this.#quietReleases.add(key);
    }
  }

  /**
   * A viewer: read the devices and releases the writing collector changed since the last call and
   * emit one `refresh` event when any did. Returns how many changed.
   */
  refresh(now = this.#now()): number {
    if (!this.view) throw new UsageError('refresh() is for a viewer (view: true); a collector ingests');
    let changed = 0;
    for (const d of this.store.all()) {
      const prev = this.#records.get(d.deviceId);
      if (prev !== undefined && prev.counter === d.counter && prev.trusted === d.trusted && prev.lastSeen === d.lastSeen) continue;
      changed += 1;
      this.#unknown += (d.trusted ? 0 : 1) - (prev === undefined || prev.trusted ? 0 : 1);
      this.#records.set(d.deviceId, d);
      if (now - d.lastSeen <= this.quietAfterMs) this.#quiet.delete(d.deviceId);
    }
    for (const r of this.store.releases()) {
      const key = releaseKey(r.sequence, r.manifestId);
      const prev = this.#releases.get(key);
      if (prev !== undefined && prev.rec.receivedAt === r.receivedAt && prev.rec.state === r.state && prev.rec.reason === r.reason) continue;
      changed += 1;
      this.#releases.set(key, { rec: r, storedAt: r.receivedAt });
      if (now - r.receivedAt <= this.publisherQuietAfterMs) this.#quietReleases.delete(key);
    }
    if (changed > 0) this.#emit({ type: 'refresh', changed });
    return changed;
  }

  /** Follow the database (a viewer): refresh() and tick() every `intervalMs` (default 1000) until close() or abort. */
  follow(opts: { intervalMs?: number; signal?: AbortSignal } = {}): void {
    if (!this.view) throw new UsageError('follow() is for a viewer (view: true)');
    if (this.#timer) throw new UsageError('the viewer already follows its database');
    const step = (): void => {
      if (!this.store.db.open) return;
      this.refresh();
      this.tick();
    };
    step();
    this.#timer = setInterval(step, opts.intervalMs ?? 1000);
    this.#timer.unref();
    opts.signal?.addEventListener('abort', () => void this.stopListening(), { once: true });
  }

  /** Decide on one datagram: accept (and store) or drop (and count). Never throws for bad input. */
  ingest(datagram: Uint8Array, from?: string, now = this.#now()): IngestResult {
    if (this.view) throw new UsageError('a viewer does not ingest; the collector that writes its database does');
    if (datagram.length >= 4 && BEACON_MAGIC.every((m, i) => datagram[i] === m)) return this.#beacon(datagram, from, now);
    if (datagram.length > MAX_STATUS_BYTES) return this.#drop('oversized', `${datagram.length} bytes`, from);
    let report: StatusReport;
    try {
      report = decode(datagram);
    } catch (err) {
      const fault = err instanceof StatusDecodeError ? err.fault : 'malformed';
      return this.#drop('malformed', `${fault}: ${(err as Error).message}`, from);
    }
    const id = report.deviceId;
    if (report.product !== this.product) return this.#drop('wrong-product', `product '${report.product}'`, from, id);
    const registered = this.#registry.get(id);
    let trusted: boolean;
    if (registered !== undefined) {
      // A device cannot speak for another: an enrolled id is only believed under its own key.
      if (!equalBytes(registered, report.publicKey)) return this.#drop('forged', `key ${toHex(report.publicKey).slice(0, 16)} is not the one enrolled for '${id}'`, from, id);
      if (!verify(datagram, this.#keyObject(id, registered))) return this.#drop('signature', `bad signature from '${id}'`, from, id);
      trusted = true;
    } else {
      // Not enrolled: the report must at least be signed by the key it carries (the operator
      // approves that key, so it must be the sender's), and it is shown as unknown.
      if (!verify(datagram, report.publicKey)) return this.#drop('signature', `bad signature from unknown '${id}'`, from, id);
      trusted = false;
    }
    const prev = this.#records.get(id);
    const sameKey = prev !== undefined && equalBytes(prev.publicKey, report.publicKey);
    if (!trusted && prev !== undefined && !sameKey) return this.#drop('conflict', `'${id}' is already claimed by key ${toHex(prev.publicKey).slice(0, 16)}`, from, id);
    // Each fresh key costs a sender nothing, so unknown devices are capped: a flood of self-signed
    // reports under new ids must not grow the table without bound.
    if (!trusted && prev === undefined && this.#unknown >= this.#maxUnknown) return this.#drop('unknown-limit', `more than ${this.#maxUnknown} unknown devices`, from, id);
    // Replay rule: strictly above the last counter accepted for this device and key.
    if (sameKey && report.counter <= prev.counter) return this.#drop('replay', `counter ${report.counter} <= ${prev.counter} for '${id}'`, from, id);
    const base = sameKey ? prev : undefined;
    const rec = recordOf(report, trusted, now, from, base);
    const transition = isTransition(base, rec);
    this.store.put(rec, transition);
    this.#unknown += (trusted ? 0 : 1) - (prev === undefined || prev.trusted ? 0 : 1);
    this.#records.set(id, rec);
    this.#quiet.delete(id);
    const device = this.#view(rec, now);
    const ev = { type: trusted ? 'report' : 'unknown', device, report, transition } as const;
    if (ev.type === 'report') this.#emit({ ...ev, type: 'report' });
    else this.#emit({ ...ev, type: 'unknown' });
    return { accepted: true, trusted, device, report, transition };
  }

  /** Periodic work: newly quiet devices, registry reload, drop counts to the database. */
  tick(now = this.#now()): void {
    if (this.#registryPath !== undefined) {
      const stamp = registryStamp(this.#registryPath);
      if (stamp !== this.#registryStamp) {
        this.#registryStamp = stamp;
        try {
          this.#registry = Registry.load(this.#registryPath, true);
          this.#keys = new Map();
          this.#applyRegistry();
          this.#emit({ type: 'registry', enrolled: this.#registry.size });
        } catch {
          // A half-edited registry: keep the last good one; the next change is read again.
        }
      }
    }
    for (const d of this.#records.values()) {
      if (!this.#quiet.has(d.deviceId) && now - d.lastSeen > this.quietAfterMs) {
        this.#quiet.add(d.deviceId);
        this.#emit({ type: 'quiet', device: this.#view(d, now) });
      }
    }
    for (const [key, e] of this.#releases) {
      if (!this.#quietReleases.has(key) && now - e.rec.receivedAt > this.publisherQuietAfterMs) {
        this.#quietReleases.add(key);
        this.#emit({ type: 'release', release: this.#releaseView(e.rec, now), change: true });
      }
    }
    this.#flush(now);
  }

  /** Join the status channel on `interface` and ingest what arrives until close() or abort. */
  async listen(opts: ListenOptions): Promise<{ group: string; port: number }> {
    if (this.view) throw new UsageError('a viewer does not listen; it follows its database');
    if (this.#socket) throw new UsageError('collector is already listening');
    const group = resolveGroup(opts.group !== undefined ? { group: opts.group } : { channel: opts.channel ?? statusChannel(this.product) });
    const sockOpts: Parameters<typeof McastSocket.open>[0] = { interface: opts.interface, bindAddress: group };
    if (opts.port !== undefined) sockOpts.port = opts.port;
    if (opts.signal !== undefined) sockOpts.signal = opts.signal;
    const sock = await McastSocket.open(sockOpts);
    this.#socket = sock;
    sock.onMessage((d) => void this.ingest(d.data, d.from));
    sock.join(group);
    this.#timer = setInterval(() => this.tick(), opts.tickMs ?? 1000);
    this.#timer.unref();
    // Aborting stops listening; the database stays open for the queries that follow (a final
    // snapshot) until close().
    opts.signal?.addEventListener('abort', () => void this.stopListening(), { once: true });
    return { group, port: sock.port };
  }

  /** Leave the channel and stop the periodic work; queries still answer. Idempotent. */
  async stopListening(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await s.close();
  }

  /** Stop listening, write the drop counts and the releases' last times, close the database. Idempotent. */
  async close(): Promise<void> {
    await this.stopListening();
    if (this.store.db.open) {
      this.#flush(this.#now(), true);
      this.store.close();
    }
  }

  /** Stats of the listening socket (received datagrams, bytes), if listening. */
  get socketStats(): McastSocket['stats'] | undefined {
    return this.#socket?.stats;
  }

  // --- queries for the CLI and a dashboard -------------------------------------------------

  /** Every device, trusted and unknown, with its health at `now`. */
  /** Enrolled devices heard within the quiet time, unsorted and not copied: for a per-second recount over a large fleet. */
  *heard(now = this.#now()): Generator<Readonly<DeviceRecord>> {
    for (const d of this.#records.values()) if (d.trusted && now - d.lastSeen <= this.quietAfterMs) yield d;
  }

  devices(now = this.#now()): DeviceView[] {
    return [...this.#records.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0)).map((d) => this.#view(d, now));
  }

  device(deviceId: string, now = this.#now()): DeviceView | undefined {
    const d = this.#records.get(deviceId);
    return d && this.#view(d, now);
  }

  /** A device's transitions, newest first. */
  history(deviceId: string, limit = 100): HistoryEntry[] {
    return this.store.history(deviceId, limit);
  }

  /** Trusted devices per installed version. */
  versionCounts(): { version: string; count: number }[] {
    return this.store.versionCounts();
  }

  /** What the publisher last said about each release, newest sequence first (the last heard first within one). */
  releases(now = this.#now()): ReleaseView[] {
    return [...this.#releases.values()]
      .map((e) => e.rec)
      .sort((a, b) => (a.sequence < b.sequence ? 1 : a.sequence > b.sequence ? -1 : b.receivedAt - a.receivedAt))
      .map((r) => this.#releaseView(r, now));
  }

  summary(now = this.#now()): FleetSummary {
    this.#flush(now);
    const health: Record<Health, number> = { ok: 0, failed: 0, quiet: 0 };
    const states: Record<string, number> = {};
    let trusted = 0;
    let unknown = 0;
    for (const d of this.#records.values()) {
      if (!d.trusted) {
        unknown += 1;
        continue;
      }
      trusted += 1;
      const v = this.#view(d, now);
      health[v.health] += 1;
      states[d.state] = (states[d.state] ?? 0) + 1;
    }
    const drops = { ...zeroDrops(), ...(this.store.drops() as Partial<Record<DropReason, number>>) };
    const releases: Record<ReleaseState | 'unknown', number> = { serving: 0, paused: 0, unknown: 0 };
    for (const e of this.#releases.values()) releases[this.#releaseView(e.rec, now).current] += 1;
    return { product: this.product, trusted, unknown, health, states, versions: this.versionCounts(), drops, quietAfterMs: this.quietAfterMs, releases };
  }

  /** The event stream as an async iterable (ends when `signal` aborts). */
  async *events(signal?: AbortSignal): AsyncGenerator<CollectorEvent> {
    try {
      for await (const [e] of on(this, 'event', signal ? { signal } : {})) yield e as CollectorEvent;
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  #view(d: DeviceRecord, now: number): DeviceView {
    const health: Health = now - d.lastSeen > this.quietAfterMs ? 'quiet' : d.state === 'failed' || d.state === 'rolled-back' ? 'failed' : 'ok';
    return { ...d, health };
  }

  #releaseView(r: ReleaseRecord, now: number): ReleaseView {
    const heard: ReleaseHeard = now - r.receivedAt > this.publisherQuietAfterMs ? 'quiet' : 'ok';
    return { ...r, demand: { ...r.demand }, heard, current: heard === 'ok' ? r.state : 'unknown' };
  }


  /** A datagram with the beacon magic: only a verified STATE beacon of this product is kept. */
  #beacon(datagram: Uint8Array, from: string | undefined, now: number): IngestResult {
    try {
      return this.#verifyBeacon(datagram, from, now);
    } catch (err) {
      // The filter refuses bad input itself; anything it throws is still one dropped datagram.
      return this.#drop('publisher', `malformed: ${(err as Error).message}`, from);
    }
  }

  #verifyBeacon(datagram: Uint8Array, from: string | undefined, now: number): IngestResult {
    // ANNOUNCE and HALT go to the announce channel; here they are refused before any signature
    // work (and never reach the filter's tables).
    const kind = datagram.length > 5 ? datagram[5] : undefined;
    if (kind === BeaconKind.ANNOUNCE || kind === BeaconKind.HALT) {
      return this.#drop('publisher', `${kind === BeaconKind.ANNOUNCE ? 'ANNOUNCE' : 'HALT'} beacon on the status channel (it belongs on the announce channel)`, from);
    }
    if (this.#filter === undefined) return this.#drop('publisher', 'a publisher beacon, and no trust anchors to verify it (--trust)', from);
    const r = this.#filter.push(datagram, now);
    if (r.type === 'refused') return this.#drop('publisher', `${r.reason}: ${r.message}`, from);
    if (r.type !== 'state') return this.#drop('publisher', `a ${r.type} on the status channel`, from);
    return this.#acceptState(r.state, from, now);
  }

  #acceptState(n: ReleaseStateNotice, from: string | undefined, now: number): IngestResult {
    const key = releaseKey(n.sequence, n.manifestId);
    const prev = this.#releases.get(key);
    const rec: ReleaseRecord = {
      sequence: n.sequence,
      manifestId: n.manifestId,
      version: n.version,
      state: n.state,
      demand: { ...n.demand },
      reason: n.reason,
      issuedAt: n.issuedAt,
      expires: n.expires,
      firstSeen: prev?.rec.firstSeen ?? now,
      receivedAt: now,
      signerKeyId: n.signerKeyId,
      counter: n.counter,
    };
    if (from !== undefined) rec.lastFrom = from;
    const wasQuiet = this.#quietReleases.delete(key);
    const change = prev === undefined || wasQuiet || releaseChanged(prev.rec, rec);
    // Every change is written at once; a repeat only refreshes the time, at most every storeEveryMs.
    const entry: ReleaseEntry = { rec, storedAt: prev?.storedAt ?? -Infinity };
    if (change || now - entry.storedAt >= this.#storeEveryMs) {
      this.store.putRelease(rec);
      entry.storedAt = now;
    }
    this.#releases.set(key, entry);
    if (prev === undefined) this.#trimReleases();
    const release = this.#releaseView(rec, now);
    this.#emit({ type: 'release', release, change });
    return { accepted: true, release, change };
  }

  /** Keep at most maxReleases: the lowest sequences go first (they are the oldest releases). */
  #trimReleases(): void {
    if (this.#releases.size <= this.#maxReleases) return;
    const byAge = [...this.#releases.entries()].sort(([, a], [, b]) => (a.rec.sequence < b.rec.sequence ? -1 : a.rec.sequence > b.rec.sequence ? 1 : a.rec.receivedAt - b.rec.receivedAt));
    for (const [key, e] of byAge.slice(0, this.#releases.size - this.#maxReleases)) {
      this.#releases.delete(key);
      this.#quietReleases.delete(key);
      this.store.deleteRelease(e.rec.sequence, e.rec.manifestId);
    }
  }

  #keyObject(id: string, raw: Uint8Array): KeyObject {
    let k = this.#keys.get(id);
    if (k === undefined) {
      k = publicKeyObject(raw);
      this.#keys.set(id, k);
    }
    return k;
  }

  #applyRegistry(): void {
    for (const d of this.#records.values()) {
      const k = this.#registry.get(d.deviceId);
      const trusted = k !== undefined && equalBytes(k, d.publicKey);
      if (trusted !== d.trusted) {
        this.#unknown += trusted ? -1 : 1;
        d.trusted = trusted;
        this.store.setTrusted(d.deviceId, trusted);
      }
    }
  }

  #drop(reason: DropReason, detail: string, from?: string, deviceId?: string): IngestResult {
    this.drops[reason] += 1;
    this.#unflushed[reason] += 1;
    const ev: Extract<CollectorEvent, { type: 'drop' }> = { type: 'drop', reason, detail };
    if (from !== undefined) ev.from = from;
    if (deviceId !== undefined) ev.deviceId = deviceId;
    this.#emit(ev);
    const r: IngestResult = { accepted: false, reason, detail };
    if (deviceId !== undefined) r.deviceId = deviceId;
    return r;
  }

  #flush(now: number, all = false): void {
    // Drop counts go to the database in batches: a flood of junk must not become a flood of writes.
    if (!this.store.db.open || this.view) return;
    this.store.addDrops(this.#unflushed);
    this.#unflushed = zeroDrops();
    // Releases heard since their last write: the time, once storeEveryMs has passed (all on close).
    for (const e of this.#releases.values()) {
      if (e.storedAt < e.rec.receivedAt && (all || now - e.storedAt >= this.#storeEveryMs)) {
        this.store.putRelease(e.rec);
        e.storedAt = e.rec.receivedAt;
      }
    }
  }

  #emit(e: CollectorEvent): void {
    this.emit(e.type as 'report', e as Extract<CollectorEvent, { type: 'report' }>);
    this.emit('event', e);
  }
}
