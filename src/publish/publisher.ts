// The publisher service's core: keeps a set of releases (from a watched directory, a config file,
// or the caller), announces each on its product's announce channel with signed beacons at a low,
// bounded rate (scheduler.ts), sends signed HALTs for halted releases, and hands each live
// release to the data-serving integration point (serve.ts). docs/publish.md describes the rules.
//
// Library rules: no process-wide side effects (no signal handlers: the CLI maps SIGHUP to
// reload()), timers unref'd, every resource released by stop() or the AbortSignal.
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { announceChannel, releaseChannel } from '../announce/channels.js';
import { signBeacon, type BeaconContent } from '../announce/sign.js';
import type { Channel } from '../channel/channel.js';
import type { Scope } from '../channel/naming.js';
import { toHex } from '../crypto/bytes.js';
import { decodeCertificateUnverified } from '../crypto/certs.js';
import type { SigningKey } from '../crypto/keys.js';
import type { TrustStore } from '../crypto/trust.js';
import { IotupdError, UsageError } from '../errors.js';
import { DEFAULT_PORT, McastSocket } from '../net/socket.js';
import { resolveGroup } from '../channel/resolve.js';
import { statusChannel } from '../fleet/channel.js';
import { Collector } from '../fleet/collector.js';
import type { Registry } from '../fleet/registry.js';
import { quietAfter, truncateUtf8, type RateBudget } from '../fleet/reporter.js';
import type { ManifestFields } from '../crypto/manifest.js';
import { MAX_STATE_REASON, type DemandCounts } from '../wire/beacon.js';
import { describeDemand, deviceNeed, PauseRule, releaseDemand, type PositionCache } from './demand.js';
import { checkImage, loadReleasesConfig, loadReleasesDir, type LoadResult, type Release } from './release.js';
import { BeaconScheduler } from './scheduler.js';
import type { RunningTransfer, ServeRelease } from './serve.js';

export interface PublisherOptions {
  /** Network interface to send on (validated; never a default). */
  interface: string;
  /** Signs the beacons; its chain must let devices' roots delegate it for each release's product and sequence. */
  key: SigningKey;
  /** A directory of release directories (watched for changes), or a JSON config file, or neither (setReleases()). */
  releasesDir?: string;
  configFile?: string;
  /** Watch releasesDir and reload on changes (default true). */
  watch?: boolean;
  /** Verify each manifest as a device would before announcing it. */
  trust?: TrustStore;
  /** Hash every image against its manifest before announcing it (default true). */
  checkImages?: boolean;
  /** Placement of the announce and data channels (as src/channel). */
  scope?: Scope;
  ssm?: boolean;
  port?: number;
  /** ms between beacons of one release (default 5000); fast start and total cap as BeaconScheduler. */
  interval?: number;
  fastStart?: number;
  fastInterval?: number;
  maxBeaconsPerSecond?: number;
  /** Seconds each beacon stays valid after it is issued (default 600; ANNOUNCEs also end with the manifest). */
  beaconLifetime?: number;
  /** Seconds without data after which a device gives up on a release (default 60), sent in every ANNOUNCE. */
  dataTimeout?: number;
  /** Starts the data transfer of a release. Absent: announce only (another process sends the data). */
  serve?: ServeRelease;
  hopLimit?: number;
  /** Pause the data of releases no device needs (docs/publish.md "Pausing"); off when absent. */
  demand?: DemandOptions;
  signal?: AbortSignal;
  onEvent?: (e: PublisherEvent) => void;
}

/** How the publisher hears the fleet, and when it pauses a release's data. */
export interface DemandOptions {
  /** The enrolled devices (a registry file, re-read on change, or a Registry): only their reports count. */
  registry: string | Registry;
  /** The devices' status budget: sets when a device counts as quiet (as the collector's). */
  budget?: RateBudget;
  /** Devices not heard for this long do not count (default from the budget). */
  quietAfterMs?: number;
  /** Nothing is paused until the publisher has listened this long (default: quietAfterMs). */
  graceMs?: number;
  /** A release is paused once nobody has needed it for this long (default 5000 ms). */
  holdMs?: number;
  /** ms between ANNOUNCE beacons of a paused release (default 6 x interval). */
  pausedInterval?: number;
  /** UDP port of the status channel (default 4242, as the devices' reporters). */
  port?: number;
}
export interface ReleaseSummary {
  source: string;
  product: string;
  sequence: string;
  version: string;
  manifestId: string;
  state: 'announced' | 'halted';
  halt?: 'stop' | 'rollback';
  /** Data channel (announced releases). */
  group: string;
  port: number;
  announceGroup: string;
  /** With demand tracking: whether the data is sent, how many devices need it, and why. */
  data?: 'serving' | 'paused';
  demand?: DemandCounts;
  reason?: string;
}

export type PublisherEvent =
  | { type: 'started'; interface: string; signer: string }
  | ({ type: 'release-added' } & ReleaseSummary)
  | ({ type: 'release-withdrawn' } & ReleaseSummary)
  | { type: 'release-error'; source: string; code: string; message: string }
  | { type: 'beacon'; kind: 'announce' | 'halt' | 'state'; product: string; sequence: string; manifestId: string; counter: string; bytes: number; group: string }
  | ({ type: 'paused' } & ReleaseSummary)
  | ({ type: 'resumed' } & ReleaseSummary)
  | { type: 'listening-status'; product: string; group: string; port: number }
  | { type: 'send-error'; message: string }
  | { type: 'reloaded'; releases: number; added: number; withdrawn: number; errors: number }
  | { type: 'stopped' };

export interface PublisherStats {
  announces: number;
  halts: number;
  states: number;
  pauses: number;
  resumes: number;
  sendErrors: number;
  reloads: number;
}

interface Active {
  /** Manifest id hex + state: a release that becomes halted is a new entry. */
  key: string;
  release: Release;
  summary: ReleaseSummary;
  announce: Channel;
  data: Channel;
  transfer: RunningTransfer | undefined;
  abort: AbortController;
  /** The manifest as the demand rules read it. */
  manifest: ManifestFields & { manifestId: Uint8Array };
  /** With demand tracking, for live releases: the rule, the product's collector, and where STATE beacons go. */
  rule: PauseRule | undefined;
  collector: Collector | undefined;
  statusGroup: string | undefined;
  /** Each device's rollout position for this release, computed once. */
  positions: PositionCache;
}

function stateKey(r: Release): string {
  return `${toHex(r.manifestId)}:${r.halt ?? 'live'}`;
}

export class Publisher {
  readonly stats: PublisherStats = { announces: 0, halts: 0, states: 0, pauses: 0, resumes: 0, sendErrors: 0, reloads: 0 };
  readonly #opts: PublisherOptions;
  readonly #scheduler: BeaconScheduler;
  readonly #active = new Map<string, Active>();
  readonly #checked = new Set<string>();
  #socket: McastSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #topWatcher: FSWatcher | undefined;
  #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | undefined;
  #counter = 0n;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  #queue: Promise<unknown> = Promise.resolve();
  readonly #lifetime: number;
  readonly #dataTimeout: number;
  /** One collector per product, listening on its status channel (demand tracking). */
  readonly #collectors = new Map<string, Promise<Collector>>();
  #demandTimer: NodeJS.Timeout | undefined;
  #listeningSince = 0;
  readonly #onAbort = (): void => void this.stop();

  constructor(opts: PublisherOptions) {
    if (opts.releasesDir !== undefined && opts.configFile !== undefined) throw new UsageError('give a releases directory or a config file, not both');
    this.#lifetime = opts.beaconLifetime ?? 600;
    this.#dataTimeout = opts.dataTimeout ?? 60;
    if (!Number.isInteger(this.#lifetime) || this.#lifetime < 1) throw new UsageError('beaconLifetime must be a positive integer of seconds');
    if (!Number.isInteger(this.#dataTimeout) || this.#dataTimeout < 1 || this.#dataTimeout > 0xffffffff) throw new UsageError('dataTimeout must be a positive integer of seconds');
    const d = opts.demand;
    if (d !== undefined) {
      for (const [k, v] of [['quietAfterMs', d.quietAfterMs], ['graceMs', d.graceMs], ['holdMs', d.holdMs], ['pausedInterval', d.pausedInterval]] as const) {
        if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new UsageError(`demand.${k} must be a number of ms >= 0`);
      }
    }
    this.#opts = opts;
    this.#scheduler = new BeaconScheduler({
      ...(opts.interval !== undefined ? { interval: opts.interval } : {}),
      ...(opts.fastStart !== undefined ? { fastStart: opts.fastStart } : {}),
      ...(opts.fastInterval !== undefined ? { fastInterval: opts.fastInterval } : {}),
      ...(opts.maxBeaconsPerSecond !== undefined ? { maxPerSecond: opts.maxBeaconsPerSecond } : {}),
    });
  }

  #emit(e: PublisherEvent): void {
    this.#opts.onEvent?.(e);
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** What is being announced or halted now. */
  releases(): ReleaseSummary[] {
    return [...this.#active.values()].map((a) => a.summary);
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new UsageError('a Publisher starts once');
    const signal = this.#opts.signal;
    signal?.throwIfAborted();
    this.#state = 'running';
    try {
      this.#socket = await McastSocket.open({
        interface: this.#opts.interface,
        port: 0,
        ...(this.#opts.hopLimit !== undefined ? { hopLimit: this.#opts.hopLimit } : {}),
      });
    } catch (err) {
      this.#state = 'stopped';
      throw err;
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#emit({ type: 'started', interface: this.#opts.interface, signer: toHex(this.#opts.key.keyId) });
    if (this.#opts.releasesDir !== undefined || this.#opts.configFile !== undefined) await this.reload();
    if (this.#opts.releasesDir !== undefined && this.#opts.watch !== false) this.#watch();
    if (this.#opts.demand) {
      this.#listeningSince = Date.now();
      this.#demandTimer = setInterval(() => this.#evaluateAll(), 1000);
      this.#demandTimer.unref();
    }
    this.#arm();
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopping';
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    clearTimeout(this.#timer);
    clearTimeout(this.#debounce);
    clearInterval(this.#demandTimer);
    this.#topWatcher?.close();
    this.#topWatcher = undefined;
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    await this.#queue.catch(() => undefined);
    for (const a of [...this.#active.values()]) await this.#withdraw(a, false);
    for (const c of this.#collectors.values()) await (await c.catch(() => undefined))?.close();
    this.#collectors.clear();
    await this.#socket?.close();
    this.#state = 'stopped';
    if (wasRunning) this.#emit({ type: 'stopped' });
  }

  /** Re-read the releases directory or config file and apply the difference (SIGHUP in the CLI). */
  reload(): Promise<LoadResult> {
    return this.#serial(async () => {
      const opts = { ...(this.#opts.trust ? { trust: this.#opts.trust } : {}) };
      let loaded: LoadResult;
      try {
        if (this.#opts.releasesDir !== undefined) loaded = loadReleasesDir(this.#opts.releasesDir, opts);
        else if (this.#opts.configFile !== undefined) loaded = loadReleasesConfig(this.#opts.configFile, opts);
        else loaded = { releases: [...this.#active.values()].map((a) => a.release), errors: [] };
      } catch (err) {
        // A config that cannot be read leaves what is running as it is.
        if (!(err instanceof IotupdError)) throw err;
        this.#emit({ type: 'release-error', source: this.#opts.releasesDir ?? this.#opts.configFile ?? '', code: err.code, message: err.message });
        return { releases: [], errors: [{ source: '', code: err.code, message: err.message }] };
      }
      await this.#apply(loaded);
      if (this.#topWatcher && this.#state === 'running') this.#watchReleaseDirs();
      return loaded;
    });
  }

  /** For callers without a directory or config: make exactly these releases live. */
  setReleases(releases: Release[]): Promise<LoadResult> {
    if (this.#opts.releasesDir !== undefined || this.#opts.configFile !== undefined) {
      return Promise.reject(new UsageError('setReleases is for publishers without a releases directory or config file'));
    }
    return this.#serial(async () => {
      const loaded = { releases, errors: [] };
      await this.#apply(loaded);
      return loaded;
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async #apply(loaded: LoadResult): Promise<void> {
    if (this.#state !== 'running') return;
    const errors = loaded.errors;
    for (const e of errors) this.#emit({ type: 'release-error', ...e });
    const desired = new Map<string, Release>();
    const sequences = new Map<string, string>();
    for (const r of loaded.releases) {
      const key = stateKey(r);
      const id = toHex(r.manifestId);
      const seqKey = `${r.fields.product}\0${r.fields.sequence}`;
      const other = sequences.get(seqKey);
      // One sequence names one release: announcing two would make every device refuse both.
      if (other !== undefined && other !== id) {
        this.#reject(errors, r.source, 'ERR_RELEASE', `${r.source}: sequence ${r.fields.sequence} of ${r.fields.product} is already used by release ${other.slice(0, 16)}; not announced`);
        continue;
      }
      if ([...desired.values()].some((d) => toHex(d.manifestId) === id)) continue; // the same release listed twice
      sequences.set(seqKey, id);
      desired.set(key, r);
    }
    let withdrawn = 0;
    for (const a of [...this.#active.values()]) {
      if (!desired.has(a.key)) {
        await this.#withdraw(a, true);
        withdrawn += 1;
      }
    }
    let added = 0;
    for (const [key, r] of desired) {
      if (this.#active.has(key) || this.#state !== 'running') continue;
      if (await this.#add(key, r, errors)) added += 1;
    }
    this.stats.reloads += 1;
    this.#emit({ type: 'reloaded', releases: this.#active.size, added, withdrawn, errors: errors.length });
    this.#arm();
  }

  #reject(errors: LoadResult['errors'], source: string, code: string, message: string): void {
    errors.push({ source, code, message });
    this.#emit({ type: 'release-error', source, code, message });
  }

  /** Whether devices will accept this publisher's beacons for `r` (its key's delegation scope). */
  #delegationProblem(r: Release): string | undefined {
    const last = this.#opts.key.chain[this.#opts.key.chain.length - 1];
    if (!last) return undefined;
    const d = decodeCertificateUnverified(last);
    if (d.kind !== 'delegation') return undefined;
    if (!d.products.includes('*') && !d.products.includes(r.fields.product)) return `the beacon key is not delegated for product '${r.fields.product}'`;
    if (r.fields.sequence < d.minSequence || r.fields.sequence > d.maxSequence) {
      return `the beacon key is delegated for sequences ${d.minSequence}..${d.maxSequence}, not ${r.fields.sequence}`;
    }
    return undefined;
  }

  async #add(key: string, r: Release, errors: LoadResult['errors']): Promise<boolean> {
    const o = this.#opts;
    const placement = { ...(o.scope ? { scope: o.scope } : {}), ...(o.ssm ? { ssm: o.ssm } : {}), ...(o.port !== undefined ? { port: o.port } : {}) };
    const problem = this.#delegationProblem(r);
    if (problem) {
      this.#reject(errors, r.source, 'ERR_DELEGATION', `${r.source}: ${problem}; devices would refuse its beacons`);
      return false;
    }
    const now = Math.floor(Date.now() / 1000);
    if (!r.halt && r.fields.expires <= now) {
      this.#reject(errors, r.source, 'ERR_EXPIRED', `${r.source}: the manifest expired at ${new Date(r.fields.expires * 1000).toISOString()}`);
      return false;
    }
    const announce = announceChannel(r.fields.product, placement);
    const data = releaseChannel(r.fields.product, r.fields.sequence, r.manifestId, placement);
    const a: Active = {
      key,
      release: r,
      announce,
      data,
      transfer: undefined,
      abort: new AbortController(),
      manifest: { ...r.fields, manifestId: r.manifestId },
      rule: undefined,
      collector: undefined,
      statusGroup: undefined,
      positions: new Map(),
      summary: {
        source: r.source,
        product: r.fields.product,
        sequence: r.fields.sequence.toString(),
        version: r.fields.version,
        manifestId: toHex(r.manifestId),
        state: r.halt ? 'halted' : 'announced',
        ...(r.halt ? { halt: r.halt } : {}),
        group: data.group,
        port: data.port,
        announceGroup: announce.group,
      },
    };
    try {
      // A beacon that cannot be built (too long a chain for one packet) fails here, not at every send.
      this.#beacon(a);
      if (!r.halt) {
        const checkKey = `${toHex(r.manifestId)}\0${r.imagePath}`;
        if (o.checkImages !== false && !this.#checked.has(checkKey)) {
          await checkImage(r, a.abort.signal);
          this.#checked.add(checkKey);
        }
        if (o.serve) a.transfer = await o.serve(r, { channel: data, interface: o.interface, signal: a.abort.signal });
        if (o.demand && a.transfer) {
          a.collector = await this.#collector(r.fields.product);
          a.statusGroup = resolveGroup({ channel: statusChannel(r.fields.product) });
          a.rule = new PauseRule({ graceMs: o.demand.graceMs ?? this.#quietAfterMs(), holdMs: o.demand.holdMs ?? 5000 }, this.#listeningSince);
          a.summary.data = 'serving';
        }
      }
    } catch (err) {
      a.abort.abort();
      if (!(err instanceof IotupdError)) throw err;
      this.#reject(errors, r.source, err.code, err.message);
      return false;
    }
    if (this.#state !== 'running') {
      a.abort.abort();
      await a.transfer?.stop();
      return false;
    }
    this.#active.set(key, a);
    this.#scheduler.add(key, Date.now());
    if (a.rule) this.#evaluate(a, Date.now(), false);
    this.#emit({ type: 'release-added', ...a.summary });
    // A transfer that ends on its own means the data no longer flows: stop announcing the release
    // (devices would join for nothing). The next reload starts it again.
    a.transfer?.done?.then(
      () => this.#transferEnded(a, 'ERR_TRANSFER_ENDED', 'the data transfer ended'),
      (err: unknown) => this.#transferEnded(a, (err as { code?: string }).code ?? 'ERR_TRANSFER', `the data transfer failed: ${(err as Error).message}`),
    );
    return true;
  }

  #transferEnded(a: Active, code: string, message: string): void {
    if (this.#active.get(a.key) !== a || a.abort.signal.aborted) return;
    this.#emit({ type: 'release-error', source: a.release.source, code, message: `${a.release.source}: ${message}; no longer announced` });
    void this.#serial(() => this.#withdraw(a, true));
  }

  async #withdraw(a: Active, announceIt: boolean): Promise<void> {
    this.#active.delete(a.key);
    this.#scheduler.remove(a.key);
    a.abort.abort();
    try {
      await a.transfer?.stop();
    } catch (err) {
      this.#emit({ type: 'release-error', source: a.release.source, code: (err as { code?: string }).code ?? 'ERR_TRANSFER', message: (err as Error).message });
    }
    if (announceIt) this.#emit({ type: 'release-withdrawn', ...a.summary });
  }

  /** Microseconds since the epoch, and always above the last one: monotonic per signer across restarts of this publisher as long as its clock does not step back (docs/publish.md). */
  #nextCounter(): bigint {
    const micros = BigInt(Date.now()) * 1000n;
    this.#counter = micros > this.#counter ? micros : this.#counter + 1n;
    return this.#counter;
  }

  #beacon(a: Active): { bytes: Uint8Array; content: BeaconContent } {
    const r = a.release;
    const issuedAt = Math.floor(Date.now() / 1000);
    const common = {
      counter: this.#nextCounter(),
      issuedAt,
      product: r.fields.product,
      sequence: r.fields.sequence,
      manifestId: r.manifestId,
    };
    const content: BeaconContent = r.halt
      ? { kind: 'halt', ...common, expires: issuedAt + this.#lifetime, rollback: r.halt === 'rollback' }
      : {
          kind: 'announce',
          ...common,
          expires: Math.max(issuedAt + 1, Math.min(issuedAt + this.#lifetime, r.fields.expires)),
          version: r.fields.version,
          objectId: r.fields.objectId,
          size: r.fields.size,
          group: a.data.group,
          port: a.data.port,
          dataTimeout: this.#dataTimeout,
          channel: a.data.name ?? '',
        };
    return { bytes: signBeacon(content, this.#opts.key), content };
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    const now = Date.now();
    const n = this.#scheduler.next(now);
    if (!n) return;
    this.#timer = setTimeout(this.#fire, Math.max(0, n.at - now));
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    const now = Date.now();
    const n = this.#scheduler.next(now);
    if (!n) return;
    if (n.at > now) {
      this.#arm();
      return;
    }
    const a = this.#active.get(n.id);
    this.#scheduler.sent(n.id, now);
    if (a) {
      this.#send(a);
      if (a.rule) this.#sendState(a);
    }
    this.#arm();
  };

  // --- demand tracking (docs/publish.md "Pausing") ------------------------------------------

  #quietAfterMs(): number {
    const d = this.#opts.demand as DemandOptions;
    return d.quietAfterMs ?? quietAfter(d.budget ?? {});
  }

  /** The product's collector, listening on its status channel (one per product, shared by its releases). */
  #collector(product: string): Promise<Collector> {
    let c = this.#collectors.get(product);
    if (c) return c;
    const d = this.#opts.demand as DemandOptions;
    c = (async () => {
      const col = new Collector({ product, registry: d.registry, quietAfterMs: this.#quietAfterMs() });
      try {
        const at = await col.listen({ interface: this.#opts.interface, port: d.port ?? DEFAULT_PORT, ...(this.#opts.signal ? { signal: this.#opts.signal } : {}) });
        this.#emit({ type: 'listening-status', product, group: at.group, port: at.port });
      } catch (err) {
        await col.close();
        this.#collectors.delete(product);
        throw err;
      }
      // A device that needs a paused release resumes it at once, not at the next tick.
      col.on('report', (e) => {
        for (const a of this.#active.values()) {
          if (a.rule?.state === 'paused' && a.manifest.product === product && deviceNeed(a.manifest, e.device, Math.floor(Date.now() / 1000), a.positions) === 'needing') this.#evaluate(a, Date.now(), true);
        }
      });
      return col;
    })();
    this.#collectors.set(product, c);
    return c;
  }

  #evaluateAll(): void {
    if (this.#state !== 'running') return;
    const now = Date.now();
    for (const a of this.#active.values()) if (a.rule) this.#evaluate(a, now, true);
  }

  /** Recount who needs `a`, pause or resume its data, and tell collectors when anything changed. */
  #evaluate(a: Active, now: number, announceChange: boolean): void {
    const { rule, transfer: t, collector: col } = a;
    if (!rule || !t || !col || this.#active.get(a.key) !== a) return;
    const counts = releaseDemand(a.manifest, col.heard(now), Math.floor(now / 1000), a.positions);
    const before = a.summary.data;
    let state = rule.update(counts, now);
    let why = rule.pending(now);
    if (state === 'paused' && (!t.pause || !t.resume)) {
      state = 'serving';
      why = 'its data transfer cannot be paused';
    }
    const reason = why ?? describeDemand(state, counts);
    a.summary.data = state;
    a.summary.demand = counts;
    a.summary.reason = reason;
    if (state !== before) {
      if (state === 'paused') {
        t.pause?.();
        this.stats.pauses += 1;
        this.#scheduler.setInterval(a.key, this.#opts.demand?.pausedInterval ?? this.#scheduler.interval * 6, now);
      } else {
        t.resume?.();
        this.stats.resumes += 1;
        this.#scheduler.setInterval(a.key, undefined, now);
      }
      this.#emit({ type: state === 'paused' ? 'paused' : 'resumed', ...a.summary });
      this.#arm();
      // A new state goes to collectors at once; new counts and words ride on the STATE beacon
      // that follows each ANNOUNCE, so a changing count costs no extra datagrams.
      if (announceChange) this.#sendState(a);
    }
  }

  /** A STATE beacon for `a` on its product's status channel, where collectors listen. */
  #sendState(a: Active): void {
    const socket = this.#socket;
    const s = a.summary;
    const group = a.statusGroup;
    if (!socket || group === undefined || s.data === undefined || s.demand === undefined) return;
    const d = this.#opts.demand as DemandOptions;
    let bytes: Uint8Array;
    const issuedAt = Math.floor(Date.now() / 1000);
    try {
      bytes = signBeacon(
        {
          kind: 'state',
          counter: this.#nextCounter(),
          issuedAt,
          expires: issuedAt + this.#lifetime,
          product: a.manifest.product,
          sequence: a.manifest.sequence,
          manifestId: a.manifest.manifestId,
          version: a.manifest.version,
          state: s.data,
          demand: s.demand,
          reason: truncateUtf8(s.reason ?? '', MAX_STATE_REASON),
        },
        this.#opts.key,
      );
    } catch (err) {
      this.stats.sendErrors += 1;
      this.#emit({ type: 'send-error', message: (err as Error).message });
      return;
    }
    socket.send(bytes, group, d.port ?? DEFAULT_PORT).then(
      () => {
        this.stats.states += 1;
        this.#emit({ type: 'beacon', kind: 'state', product: a.manifest.product, sequence: s.sequence, manifestId: s.manifestId, counter: this.#counter.toString(), bytes: bytes.length, group });
      },
      (err: unknown) => {
        this.stats.sendErrors += 1;
        this.#emit({ type: 'send-error', message: (err as Error).message });
      },
    );
  }

  #send(a: Active): void {
    let beacon: { bytes: Uint8Array; content: BeaconContent };
    try {
      beacon = this.#beacon(a);
    } catch (err) {
      this.stats.sendErrors += 1;
      this.#emit({ type: 'send-error', message: (err as Error).message });
      return;
    }
    const { bytes, content } = beacon;
    const socket = this.#socket;
    if (!socket) return;
    socket.send(bytes, a.announce.group, a.announce.port).then(
      () => {
        if (content.kind === 'halt') this.stats.halts += 1;
        else this.stats.announces += 1;
        this.#emit({
          type: 'beacon',
          kind: content.kind,
          product: content.product,
          sequence: content.sequence.toString(),
          manifestId: a.summary.manifestId,
          counter: content.counter.toString(),
          bytes: bytes.length,
          group: a.announce.group,
        });
      },
      (err: unknown) => {
        this.stats.sendErrors += 1;
        this.#emit({ type: 'send-error', message: (err as Error).message });
      },
    );
  }

  #watch(): void {
    const dir = this.#opts.releasesDir as string;
    try {
      const w = watch(dir, () => this.#changed());
      w.on('error', (err) => this.#emit({ type: 'release-error', source: dir, code: 'ERR_WATCH', message: err.message }));
      w.unref();
      this.#topWatcher = w;
    } catch (err) {
      this.#emit({ type: 'release-error', source: dir, code: 'ERR_WATCH', message: (err as Error).message });
    }
    this.#watchReleaseDirs();
  }

  /** One watcher per release directory too: a halt file or a replaced manifest changes the release. */
  #watchReleaseDirs(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    const dirs = new Set([...this.#active.values()].map((a) => a.release.source));
    for (const d of dirs) {
      try {
        const w = watch(d, () => this.#changed());
        w.on('error', () => undefined); // a release directory removed: the top-level watcher sees it
        w.unref();
        this.#watchers.push(w);
      } catch {
        // removed between the load and now: the next reload drops it
      }
    }
  }

  #changed(): void {
    if (this.#state !== 'running') return;
    clearTimeout(this.#debounce);
    // Files arrive in several writes (copy the image, then the manifest): wait for quiet.
    this.#debounce = setTimeout(() => void this.reload().catch((err: unknown) => this.#emit({ type: 'release-error', source: this.#opts.releasesDir ?? '', code: 'ERR_RELOAD', message: String(err) })), 300);
    this.#debounce.unref();
  }
}

/** The path of a release directory's files (for tools that write them). */
export function releaseFiles(dir: string): { manifest: string; image: string; halt: string } {
  return { manifest: join(dir, 'manifest'), image: join(dir, 'image'), halt: join(dir, 'halt') };
}
