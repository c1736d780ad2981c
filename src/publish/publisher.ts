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
import { McastSocket } from '../net/socket.js';
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
  signal?: AbortSignal;
  onEvent?: (e: PublisherEvent) => void;
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
}

export type PublisherEvent =
  | { type: 'started'; interface: string; signer: string }
  | ({ type: 'release-added' } & ReleaseSummary)
  | ({ type: 'release-withdrawn' } & ReleaseSummary)
  | { type: 'release-error'; source: string; code: string; message: string }
  | { type: 'beacon'; kind: 'announce' | 'halt' | 'state'; product: string; sequence: string; manifestId: string; counter: string; bytes: number; group: string }
  | { type: 'send-error'; message: string }
  | { type: 'reloaded'; releases: number; added: number; withdrawn: number; errors: number }
  | { type: 'stopped' };

export interface PublisherStats {
  announces: number;
  halts: number;
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
}

function stateKey(r: Release): string {
  return `${toHex(r.manifestId)}:${r.halt ?? 'live'}`;
}

export class Publisher {
  readonly stats: PublisherStats = { announces: 0, halts: 0, sendErrors: 0, reloads: 0 };
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
  readonly #onAbort = (): void => void this.stop();

  constructor(opts: PublisherOptions) {
    if (opts.releasesDir !== undefined && opts.configFile !== undefined) throw new UsageError('give a releases directory or a config file, not both');
    this.#lifetime = opts.beaconLifetime ?? 600;
    this.#dataTimeout = opts.dataTimeout ?? 60;
    if (!Number.isInteger(this.#lifetime) || this.#lifetime < 1) throw new UsageError('beaconLifetime must be a positive integer of seconds');
    if (!Number.isInteger(this.#dataTimeout) || this.#dataTimeout < 1 || this.#dataTimeout > 0xffffffff) throw new UsageError('dataTimeout must be a positive integer of seconds');
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
    this.#arm();
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopping';
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    clearTimeout(this.#timer);
    clearTimeout(this.#debounce);
    this.#topWatcher?.close();
    this.#topWatcher = undefined;
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    await this.#queue.catch(() => undefined);
    for (const a of [...this.#active.values()]) await this.#withdraw(a, false);
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

  #beacon(a: Active): { bytes: Uint8Array; content: BeaconContent } {
    const r = a.release;
    const issuedAt = Math.floor(Date.now() / 1000);
    // Microseconds since the epoch, and always above the last one: monotonic per signer across
    // restarts of this publisher as long as its clock does not step back (docs/publish.md).
    const micros = BigInt(Date.now()) * 1000n;
    this.#counter = micros > this.#counter ? micros : this.#counter + 1n;
    const common = {
      counter: this.#counter,
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
    if (a) this.#send(a);
    this.#arm();
  };

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
