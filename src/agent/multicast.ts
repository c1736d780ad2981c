// The agent's network source (docs/agent.md "Multicast source"): releases heard on the product's
// announce channel, data received by fountain transfer on each release's data channel.
//
// A beacon carries no manifest (docs/publish.md): the signed manifest travels on the data channel
// with the data. So an offer is made in two steps: the AnnounceFilter turns a verified ANNOUNCE
// into a candidate; the source joins its data channel with the library Receiver and hands the
// agent the manifest as soon as the Receiver has verified it. The Receiver keeps receiving while
// the agent decides: `fetch` waits for it to complete; a release the agent does not fetch is
// parted as soon as the agent asks for the next offer.
//
// The announce channel is read by a pump of its own, so that a HALT is heard while a release is
// downloaded or installed (the agent then aborts it before the switch, src/agent/agent.ts halt()).
//
// Data timeout (docs/publish.md "When data never comes"): joined to a data channel, the source
// gives the release up after the beacon's dataTimeout seconds without a datagram, parts the group,
// tells the filter (gaveUp: growing back-off before it is offered again) and keeps listening.
// The receive spools in the state directory (incoming/), so a release given up, interrupted or
// cut by a restart resumes from the blocks already held when it is offered again.
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Scope } from '../channel/naming.js';
import { toHex } from '../crypto/bytes.js';
import type { Manifest } from '../crypto/manifest.js';
import { DeviceState } from '../crypto/rollback.js';
import type { TrustStore } from '../crypto/trust.js';
import { AbortError, IotupdError, TimeoutError, UsageError } from '../errors.js';
import { storageError } from '../fsutil/index.js';
import { AnnounceFilter, type AnnounceFilterOptions, type AnnounceFilterStats, type Halt, type Offer as Announcement } from '../announce/filter.js';
import { listenForAnnouncements } from '../announce/listen.js';
import { Receiver } from '../session/receiver.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';
import { fsyncDir } from './fsops.js';
import type { Offer, ReleaseSource } from './source.js';

export interface MulticastSourceOptions {
  config: AgentConfig;
  /** The pinned keys (the agent's TrustStore). */
  trust: TrustStore;
  /** Interface to join on; default config.network.interface (one of the two is required). */
  interface?: string;
  /** Announce channel placement, as the publisher's (default: global scope, port 4242). */
  scope?: Scope;
  port?: number;
  /** Further AnnounceFilter settings (flood limits, table sizes). */
  filter?: Partial<Omit<AnnounceFilterOptions, 'trust' | 'product' | 'installedSequence' | 'trustedClock' | 'timeFloor'>>;
  /** Cap on the beacon's data timeout, seconds (default: none). */
  maxDataTimeout?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export interface ReleaseRef {
  version: string;
  sequence: string;
  manifestId: string;
}

export interface MulticastSourceEvents {
  /** The announce channel is joined. */
  listening: [{ group: string; port: number; interface: string }];
  /** A verified ANNOUNCE made a candidate; the source joins its data channel. */
  announced: [ReleaseRef & { group: string; port: number; size: number; from: string }];
  /** The data channel gave no data for the data timeout (or failed): parted, offered again after `retryIn` s. */
  'gave-up': [ReleaseRef & { reason: string; retryIn: number }];
  /** A valid HALT, the first time its release is halted. */
  halt: [Halt];
  /** Two releases announced with one sequence: both refused. */
  conflict: [{ sequence: string; manifestIds: string[] }];
  /** Receive progress of the release on the data channel (about every 250 ms once its size is known). */
  progress: [DownloadProgress];
}

/** How far the receive of a release is: distinct useful symbols held of those needed to decode. */
export interface DownloadProgress extends ReleaseRef {
  received: number;
  needed: number;
  /** received / needed, 0..1. */
  fraction: number;
}

interface Candidate {
  announcement: Announcement;
  from: string;
}

interface Active {
  id: string;
  ref: ReleaseRef;
  announcement: Announcement;
  out: string;
  ac: AbortController;
  receiver: Receiver;
  /** Datagrams seen so far, and when that count last grew (ms). */
  activity: number;
  lastActivity: number;
  fetched: boolean;
}

function refOf(a: Announcement): ReleaseRef {
  return { version: a.version, sequence: a.sequence.toString(), manifestId: toHex(a.manifestId) };
}

/**
 * The agent's ReleaseSource on the network. `offers()` runs until its signal aborts; it never
 * throws on network input (refusals are counted in `stats`).
 */
export class MulticastSource extends EventEmitter<MulticastSourceEvents> implements ReleaseSource {
  readonly filter: AnnounceFilter;
  readonly interface: string;
  readonly #config: AgentConfig;
  readonly #trust: TrustStore;
  readonly #now: () => number;
  readonly #opts: MulticastSourceOptions;
  readonly #incoming: string;
  #candidates: Candidate[] = [];
  #wake: (() => void) | undefined;
  #active: Active | undefined;
  /** Give-ups per release (manifest id hex), for the back-off reported in 'gave-up'; bounded. */
  #giveUps = new Map<string, number>();
  /** Why the announce channel could not be read (a socket error, not network input). */
  #pumpError: unknown;

  constructor(opts: MulticastSourceOptions) {
    super();
    const iface = opts.interface ?? opts.config.network.interface;
    if (!iface) throw new UsageError('the multicast source needs an interface (config network.interface)', 'ERR_CONFIG');
    this.interface = iface;
    this.#config = opts.config;
    this.#trust = opts.trust;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#incoming = join(opts.config.stateDir, 'incoming');
    const d = this.#device();
    this.filter = new AnnounceFilter({
      ...opts.filter,
      trust: opts.trust,
      product: opts.config.product,
      installedSequence: d.installedSequence,
      trustedClock: opts.config.clock === 'trusted',
      timeFloor: d.timeFloor,
    });
  }

  get stats(): AnnounceFilterStats {
    return this.filter.stats;
  }

  #device(): DeviceState {
    return DeviceState.open(this.#config.stateDir, this.#config.product);
  }

  async *offers(signal: AbortSignal): AsyncIterable<Offer> {
    const pump = this.#pump(signal).catch((err: unknown) => {
      this.#pumpError = err;
      this.#wake?.();
    });
    try {
      while (!signal.aborted) {
        const c = await this.#next(signal);
        if (!c) break;
        const offer = await this.#probe(c, signal);
        if (!offer) continue;
        yield offer;
        // The agent is done with this offer: a receive it did not fetch is parted.
        this.#dropActive();
      }
    } finally {
      this.#dropActive();
      await pump;
    }
  }

  /** Read the announce channel until `signal` aborts; never throws on network input. */
  async #pump(signal: AbortSignal): Promise<void> {
    const ch = { ...(this.#opts.scope ? { scope: this.#opts.scope } : {}), ...(this.#opts.port !== undefined ? { port: this.#opts.port } : {}) };
    try {
      for await (const r of listenForAnnouncements({
        interface: this.interface,
        product: this.#config.product,
        filter: this.filter,
        now: this.#now,
        signal,
        ...ch,
        onReady: (c) => this.emit('listening', { ...c, interface: this.interface }),
      })) {
        if (r.type === 'offer') {
          this.#candidates.push({ announcement: r.offer, from: r.from });
          this.emit('announced', { ...refOf(r.offer), group: r.offer.group, port: r.offer.port, size: r.offer.size, from: r.from });
          this.#wake?.();
        } else if (r.type === 'halt') {
          const id = toHex(r.halt.manifestId);
          this.#candidates = this.#candidates.filter((c) => toHex(c.announcement.manifestId) !== id);
          // A halted release's receive stops at once; the agent hears of the halt by the event.
          if (this.#active?.id === id) this.#active.ac.abort(new AgentError(`release ${this.#active.ref.version} was halted by the publisher`, 'ERR_HALTED'));
          if (r.first) this.emit('halt', r.halt);
        } else if (r.type === 'conflict') {
          const ids = r.manifestIds.map(toHex);
          this.#candidates = this.#candidates.filter((c) => !ids.includes(toHex(c.announcement.manifestId)));
          if (this.#active && ids.includes(this.#active.id)) this.#active.ac.abort(new AgentError(`sequence ${r.sequence} is announced by two releases`, 'ERR_CONFLICT'));
          this.emit('conflict', { sequence: r.sequence.toString(), manifestIds: ids });
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      this.#wake?.();
    }
  }

  /** The next candidate worth a join: the highest sequence above what is installed. */
  async #next(signal: AbortSignal): Promise<Candidate | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      if (this.#pumpError !== undefined) throw this.#pumpError;
      const d = this.#device();
      this.filter.setInstalled(d.installedSequence, d.timeFloor);
      this.#candidates = this.#candidates.filter((c) => c.announcement.sequence > d.installedSequence && !this.filter.halted(c.announcement.manifestId));
      if (this.#candidates.length > 0) {
        this.#candidates.sort((a, b) => (a.announcement.sequence < b.announcement.sequence ? 1 : -1));
        const [best, ...rest] = this.#candidates;
        // Lower ones wait: offered again by the filter after a short back-off if still wanted.
        for (const c of rest) this.filter.gaveUp(c.announcement.manifestId, this.#now(), 1);
        this.#candidates = [];
        return best;
      }
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        onAbort = () => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
      });
      if (onAbort) signal.removeEventListener('abort', onAbort);
      this.#wake = undefined;
    }
  }

  #dataTimeout(a: Announcement): number {
    const t = Math.max(1, a.dataTimeout);
    return this.#opts.maxDataTimeout !== undefined ? Math.min(t, this.#opts.maxDataTimeout) : t;
  }

  /** Join the candidate's data channel and wait for its verified manifest. */
  async #probe(c: Candidate, signal: AbortSignal): Promise<Offer | undefined> {
    const a = c.announcement;
    const id = toHex(a.manifestId);
    this.#clearIncoming(id);
    const active = this.#start(a);
    try {
      const m = await this.#watch<Manifest>(active, signal, (rx, settle) => {
        rx.once('manifest', (mf) => settle(mf));
      });
      if (!m) return undefined;
      if (toHex(m.manifestId) !== id) {
        // The beacon's signer and the manifest's agree on nothing: not this release.
        this.#giveUp(active, 'the data channel carries another release');
        return undefined;
      }
      return { manifest: m.bytes, origin: `${c.from} ${a.group} port ${a.port}` };
    } catch (err) {
      if (signal.aborted) throw err;
      this.#giveUp(active, (err as Error).message);
      return undefined;
    }
  }

  #start(a: Announcement): Active {
    const id = toHex(a.manifestId);
    const dir = join(this.#incoming, id);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageError(err, 'create', dir);
    }
    const out = join(dir, 'image');
    const ac = new AbortController();
    const receiver = new Receiver({
      group: a.group,
      port: a.port,
      interface: this.interface,
      out,
      objectId: a.objectId,
      security: {
        trust: this.#trust,
        product: this.#config.product,
        stateDir: this.#config.stateDir,
        // The agent records the install itself, after the switch and the health check.
        recordInstall: false,
        ...(this.#config.clock === 'untrusted' ? { clock: false as const } : {}),
      },
      signal: ac.signal,
    });
    const active: Active = { id, ref: refOf(a), announcement: a, out, ac, receiver, activity: 0, lastActivity: this.#now(), fetched: false };
    const bump = (n: number) => {
      if (n > active.activity) {
        active.activity = n;
        active.lastActivity = this.#now();
      }
    };
    receiver.on('progress', (p) => {
      const s = receiver.securitySummary();
      const drops = s ? Object.values(s.drops).reduce((x, y) => x + (typeof y === 'number' ? y : 0), 0) : 0;
      bump(p.stats.datagrams + drops);
      if (p.needed > 0) this.emit('progress', { ...active.ref, received: p.have, needed: p.needed, fraction: Math.min(1, p.have / p.needed) });
    });
    receiver.on('block', () => {
      active.activity += 1;
      active.lastActivity = this.#now();
    });
    this.#active = active;
    return active;
  }

  /**
   * Wait until `arm` settles, the receive ends, or no datagram came for the data timeout.
   * Resolves undefined when the receive ended without settling (see #giveUp by the caller).
   */
  async #watch<T>(active: Active, signal: AbortSignal, arm: (rx: Receiver, settle: (v: T) => void) => void): Promise<T | undefined> {
    const timeout = this.#dataTimeout(active.announcement);
    const onAbort = () => active.ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<T | undefined>((resolve, reject) => {
        arm(active.receiver, resolve);
        active.receiver.done.then(() => resolve(undefined), reject);
        const check = () => {
          const idle = (this.#now() - active.lastActivity) / 1000;
          if (idle >= timeout) {
            active.ac.abort(new TimeoutError(`no data for ${timeout} s on ${active.announcement.group}`));
            return;
          }
          timer = setTimeout(check, Math.max(100, (timeout - idle) * 1000));
        };
        timer = setTimeout(check, timeout * 1000);
      });
    } finally {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  #giveUp(active: Active, reason: string): void {
    active.ac.abort(new AbortError('given up'));
    if (this.#active === active) this.#active = undefined;
    const a = active.announcement;
    const timeout = Math.max(1, a.dataTimeout);
    this.filter.gaveUp(a.manifestId, this.#now(), timeout);
    const n = (this.#giveUps.get(active.id) ?? 0) + 1;
    this.#giveUps.delete(active.id);
    this.#giveUps.set(active.id, n);
    if (this.#giveUps.size > 64) this.#giveUps.delete(this.#giveUps.keys().next().value as string);
    // The filter's back-off (AnnounceFilter.gaveUp): dataTimeout x 2^(n-1), at most an hour.
    const retryIn = Math.min(this.#opts.filter?.maxBackoff ?? 3600, timeout * 2 ** Math.min(n - 1, 30));
    // The spool stays: the next attempt resumes from the blocks held.
    this.emit('gave-up', { ...active.ref, reason, retryIn });
  }

  #dropActive(): void {
    const a = this.#active;
    if (!a) return;
    this.#active = undefined;
    a.ac.abort(new AbortError('not fetched'));
    if (!a.fetched) {
      // Not taken by the agent (skipped): nothing of it is kept. The receive may still be closing
      // its spool; removing after it settled avoids racing its writes.
      void a.receiver.done.catch(() => undefined).then(() => this.#clearIncoming(undefined, a.id));
    }
  }

  /** Remove spools of other releases (keep: the id to keep), or only `only`. */
  #clearIncoming(keep?: string, only?: string): void {
    let names: string[];
    try {
      names = readdirSync(this.#incoming);
    } catch {
      return;
    }
    for (const n of names) {
      if (n === keep || (only !== undefined && n !== only)) continue;
      if (this.#active?.id === n) continue;
      try {
        rmSync(join(this.#incoming, n), { recursive: true, force: true });
      } catch {
        // retried at the next candidate
      }
    }
  }

  async fetch(_offer: Offer, m: Manifest, dest: string, signal: AbortSignal): Promise<void> {
    const id = toHex(m.manifestId);
    const active = this.#active;
    if (!active || active.id !== id) throw new AgentError(`release ${m.version} is no longer being received`, 'ERR_FETCH');
    active.fetched = true;
    try {
      await this.#watch<never>(active, signal, () => undefined);
      await active.receiver.done;
    } catch (err) {
      if (this.#active === active) this.#active = undefined;
      if (signal.aborted) throw err;
      // The abort reason says why (halt, conflict, data timeout) better than the Receiver's wrapper.
      const reason: unknown = active.ac.signal.aborted ? active.ac.signal.reason : err;
      const e = reason instanceof IotupdError ? reason : new AgentError((reason as Error)?.message ?? String(reason), 'ERR_FETCH', { cause: reason });
      if (e.code === 'ERR_HALTED' || e.code === 'ERR_CONFLICT') throw e;
      this.#giveUp(active, e.message);
      throw e instanceof TimeoutError ? new AgentError(e.message, 'ERR_DATA_TIMEOUT', { cause: e }) : e;
    }
    // The Receiver renamed the complete, verified object into place; move it where the agent wants it.
    try {
      renameSync(active.out, dest);
      fsyncDir(dirname(dest));
    } catch (err) {
      throw storageError(err, 'write', dest);
    }
    if (this.#active === active) this.#active = undefined;
    this.#clearIncoming(undefined, id);
  }
}
