// The device side of release announcements: a pure filter that is fed datagrams from a product's
// announce channel and turns the few that deserve it into offers and halts. No socket, no clock:
// the caller passes `now`, so every rule below is a deterministic unit test. Rules and limits are
// documented in docs/publish.md ("Verification on the device").
//
// Checks run cheapest first, so that hostile traffic costs as little as possible: decode and
// product (no crypto), a replay pre-check against counters already verified, the flood limits,
// and only then the certificate chain and the Ed25519 signature. A refusal is counted under the
// first check that failed.
import { createHash, type KeyObject } from 'node:crypto';
import { toHex } from '../crypto/bytes.js';
import type { Delegation } from '../crypto/certs.js';
import { ed25519Verify } from '../crypto/keys.js';
import type { TrustStore } from '../crypto/trust.js';
import { IotupdError, UsageError } from '../errors.js';
import { BeaconDecodeError, decodeDatagram, MAX_BEACON, signingInput, type AnnounceBeacon, type Beacon, type DemandCounts, type HaltBeacon, type ReleaseState, type StateBeacon } from '../wire/beacon.js';
import { LruMap, TokenBucket } from './bounded.js';

export type RefusalReason =
  /** Not a beacon: bad bytes, wrong length, unknown kind. */
  | 'malformed'
  /** For another product (also checked before the signature: cheap). */
  | 'wrong-product'
  /** Counter not above the highest already accepted from this signer. */
  | 'replay'
  /** Over the signature-verification budget (per claimed signer, or in total). */
  | 'flood'
  /** The signer does not chain to a pinned key, is revoked, or is not delegated for this product / sequence. */
  | 'untrusted'
  /** The signature does not verify. */
  | 'forged'
  /** Past its expiry (by a trusted clock, or by the time floor). */
  | 'expired'
  /** Issued further in the future than the allowed clock skew. */
  | 'not-yet-valid'
  /** ANNOUNCE of a sequence at or below the installed one. */
  | 'lower-sequence'
  /** ANNOUNCE of a release a valid HALT has stopped. */
  | 'halted'
  /** Two different releases announced with the same product and sequence (see conflicts). */
  | 'conflict';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'malformed',
  'wrong-product',
  'replay',
  'flood',
  'untrusted',
  'forged',
  'expired',
  'not-yet-valid',
  'lower-sequence',
  'halted',
  'conflict',
];

/** A verified announcement a device may act on. */
export interface Offer {
  product: string;
  sequence: bigint;
  version: string;
  manifestId: Uint8Array;
  objectId: Uint8Array;
  size: number;
  /** Where the data is sent: join this group and port. */
  group: string;
  port: number;
  channel: string;
  /**
   * The give-up rule (docs/publish.md, "When the data never comes"): after joining, a device that
   * receives no data for this many seconds parts the group, calls `gaveUp(manifestId, now)` and
   * keeps listening; the filter offers the release again only after a growing back-off.
   */
  dataTimeout: number;
  issuedAt: number;
  expires: number;
  signerKeyId: Uint8Array;
  /** The `now` (ms) of the datagram that made this offer. */
  receivedAt: number;
}

export interface Halt {
  product: string;
  sequence: bigint;
  manifestId: Uint8Array;
  /** Devices that installed this release roll back. */
  rollback: boolean;
  issuedAt: number;
  expires: number;
  signerKeyId: Uint8Array;
  receivedAt: number;
}

/** A verified STATE beacon: what the publisher does with a release's data, and why. */
export interface ReleaseStateNotice {
  product: string;
  sequence: bigint;
  manifestId: Uint8Array;
  version: string;
  state: ReleaseState;
  demand: DemandCounts;
  reason: string;
  /** The signer's counter: a collector keeps the highest across restarts (replay). */
  counter: bigint;
  issuedAt: number;
  expires: number;
  signerKeyId: Uint8Array;
  receivedAt: number;
}

export type AnnounceResult =
  /** A release to fetch: the first valid beacon for it, or the first after a back-off ended. */
  | { type: 'offer'; offer: Offer }
  /** A valid beacon for a release already offered (the publisher is still announcing it). */
  | { type: 'repeat'; manifestId: Uint8Array; sequence: bigint }
  /** A valid HALT; `first` is true the first time this manifest id is halted. */
  | { type: 'halt'; halt: Halt; first: boolean }
  /** A valid STATE beacon (collectors act on these; devices ignore them). */
  | { type: 'state'; state: ReleaseStateNotice }
  /** Two releases share a sequence: stop acting on both (reported once per sequence). */
  | { type: 'conflict'; product: string; sequence: bigint; manifestIds: Uint8Array[] }
  | { type: 'refused'; reason: RefusalReason; message: string };

export interface AnnounceFilterOptions {
  trust: TrustStore;
  /** This device's product. */
  product: string;
  /** Highest sequence installed (src/crypto/rollback.ts); announcements must be above it. */
  installedSequence: bigint;
  /**
   * Whether `now` comes from a trusted clock (default true). Without one, expiry is judged
   * against `timeFloor` only, as for manifests (docs/security.md), and counters still stop replays.
   */
  trustedClock?: boolean;
  /** Highest `created` of any installed manifest (unix s): a clock set back cannot revive beacons. */
  timeFloor?: number;
  /** Seconds a beacon's issued-at may lie in the future (default 600, as manifests). */
  maxClockSkew?: number;
  /** Signature verifications per second in total (default 20) and burst (default 40). */
  verifyRate?: number;
  verifyBurst?: number;
  /** Signature verifications per second per claimed signer key id (default 4), burst (default 8). */
  signerRate?: number;
  signerBurst?: number;
  /** Table sizes (each bounded, least recently used evicted): signers, releases, halts, sequences. */
  maxSigners?: number;
  maxReleases?: number;
  maxHalts?: number;
  maxSequences?: number;
  /** Longest back-off after repeated give-ups, seconds (default 3600). */
  maxBackoff?: number;
}

export interface AnnounceFilterStats {
  datagrams: number;
  offers: number;
  repeats: number;
  halts: number;
  states: number;
  conflicts: number;
  /** Ed25519 verifications performed (beacon signatures and certificate chains). */
  verifications: number;
  refused: Record<RefusalReason, number>;
}

interface OfferState {
  sequence: bigint;
  /** When the release may be offered again; undefined while the current offer stands. */
  retryAt: number | undefined;
  attempts: number;
}

interface SequenceState {
  manifestId: string;
  conflict: { manifestIds: Set<string> } | undefined;
}

interface ChainEntry {
  signerKey: KeyObject;
  delegation: Delegation | undefined;
  /** ms: cached results are re-checked this often, so validity windows and revocations apply. */
  until: number;
}

const CHAIN_CACHE_MS = 60_000;
const CHAIN_CACHE_SIZE = 16;

function chainKey(b: Beacon): string {
  const h = createHash('sha256').update(b.signerKeyId);
  for (const c of b.chain) h.update(c);
  return h.digest('hex');
}

export class AnnounceFilter {
  readonly stats: AnnounceFilterStats;
  readonly #trust: TrustStore;
  readonly #product: string;
  #installed: bigint;
  readonly #trustedClock: boolean;
  #timeFloor: number | undefined;
  readonly #skew: number;
  readonly #maxBackoff: number;
  readonly #verifyBudget: TokenBucket;
  readonly #signerRate: number;
  readonly #signerBurst: number;
  readonly #signerBuckets: LruMap<string, TokenBucket>;
  /** Highest verified counter per signer key id. */
  readonly #counters: LruMap<string, bigint>;
  readonly #releases: LruMap<string, OfferState>;
  readonly #halts: LruMap<string, Halt>;
  readonly #sequences: LruMap<bigint, SequenceState>;
  readonly #chains = new LruMap<string, ChainEntry>(CHAIN_CACHE_SIZE);

  constructor(opts: AnnounceFilterOptions) {
    if (typeof opts.product !== 'string' || opts.product.length === 0) throw new UsageError('AnnounceFilter needs a product');
    if (typeof opts.installedSequence !== 'bigint' || opts.installedSequence < 0n) throw new UsageError('installedSequence must be a non-negative bigint');
    this.#trust = opts.trust;
    this.#product = opts.product;
    this.#installed = opts.installedSequence;
    this.#trustedClock = opts.trustedClock ?? true;
    this.#timeFloor = opts.timeFloor;
    this.#skew = opts.maxClockSkew ?? 600;
    this.#maxBackoff = opts.maxBackoff ?? 3600;
    this.#verifyBudget = new TokenBucket(opts.verifyRate ?? 20, opts.verifyBurst ?? 40);
    this.#signerRate = opts.signerRate ?? 4;
    this.#signerBurst = opts.signerBurst ?? 8;
    this.#signerBuckets = new LruMap(opts.maxSigners ?? 64);
    this.#counters = new LruMap(opts.maxSigners ?? 64);
    this.#releases = new LruMap(opts.maxReleases ?? 64);
    this.#halts = new LruMap(opts.maxHalts ?? 64);
    this.#sequences = new LruMap(opts.maxSequences ?? 64);
    const refused = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>;
    this.stats = { datagrams: 0, offers: 0, repeats: 0, halts: 0, states: 0, conflicts: 0, verifications: 0, refused };
  }

  get installedSequence(): bigint {
    return this.#installed;
  }

  /** After an install: later announcements must be above `sequence`; state for older ones is dropped. */
  setInstalled(sequence: bigint, timeFloor?: number): void {
    if (sequence > this.#installed) this.#installed = sequence;
    if (timeFloor !== undefined && (this.#timeFloor === undefined || timeFloor > this.#timeFloor)) this.#timeFloor = timeFloor;
    for (const [seq] of [...this.#sequences.entries()]) if (seq <= this.#installed) this.#sequences.delete(seq);
    for (const [id, r] of [...this.#releases.entries()]) if (r.sequence <= this.#installed) this.#releases.delete(id);
  }

  /**
   * The device joined the release's data channel and nothing came for `dataTimeout` seconds (or
   * the transfer failed). The release is offered again after a back-off of dataTimeout x 2^(n-1)
   * for the n-th give-up, capped at maxBackoff, so a release whose data never comes costs a device
   * one join per back-off period, not one per beacon.
   */
  gaveUp(manifestId: Uint8Array, now: number, dataTimeout = 60): void {
    const id = toHex(manifestId);
    const r = this.#releases.peek(id);
    if (!r) return;
    r.attempts += 1;
    const backoff = Math.min(this.#maxBackoff, dataTimeout * 2 ** Math.min(r.attempts - 1, 30));
    r.retryAt = now + backoff * 1000;
  }

  /**
   * A counter verified before a restart (a collector keeps them in its database): beacons of this
   * signer at or below it are refused as replays, as if this filter had seen it.
   */
  rememberCounter(signerKeyId: Uint8Array, counter: bigint): void {
    const signer = toHex(signerKeyId);
    const last = this.#counters.peek(signer);
    if (last === undefined || counter > last) this.#counters.set(signer, counter);
  }

  /** Current sizes of the bounded tables (each at most its configured limit). */
  tables(): { signers: number; counters: number; releases: number; halts: number; sequences: number; chains: number } {
    return {
      signers: this.#signerBuckets.size,
      counters: this.#counters.size,
      releases: this.#releases.size,
      halts: this.#halts.size,
      sequences: this.#sequences.size,
      chains: this.#chains.size,
    };
  }

  /** Whether a valid HALT for this manifest id has been seen (bounded memory: recent halts). */
  halted(manifestId: Uint8Array): Halt | undefined {
    return this.#halts.peek(toHex(manifestId));
  }

  #refuse(reason: RefusalReason, message: string): AnnounceResult {
    this.stats.refused[reason] += 1;
    return { type: 'refused', reason, message };
  }

  /** `now`: milliseconds on the device's clock (unix epoch when trustedClock). Never throws on input. */
  push(datagram: Uint8Array, now: number): AnnounceResult {
    this.stats.datagrams += 1;
    if (datagram.length > MAX_BEACON) return this.#refuse('malformed', `datagram of ${datagram.length} bytes is larger than any beacon`);
    let b: Beacon;
    try {
      b = decodeDatagram(datagram);
    } catch (err) {
      if (err instanceof BeaconDecodeError) return this.#refuse('malformed', err.message);
      throw err;
    }
    if (b.product !== this.#product) return this.#refuse('wrong-product', `beacon for product '${b.product}', this device is '${this.#product}'`);
    const signer = toHex(b.signerKeyId);
    const last = this.#counters.peek(signer);
    if (last !== undefined && b.counter <= last) return this.#refuse('replay', `counter ${b.counter} of signer ${signer} is not above ${last}`);

    // Flood limits before any signature work: per claimed signer (so one noisy key id cannot use
    // the whole budget), then in total (bounds the CPU a flood of random key ids can take).
    let bucket = this.#signerBuckets.get(signer);
    if (!bucket) {
      bucket = new TokenBucket(this.#signerRate, this.#signerBurst);
      this.#signerBuckets.set(signer, bucket);
    }
    if (!bucket.take(now)) return this.#refuse('flood', `signer ${signer} over ${this.#signerRate} verifications/s`);
    if (!this.#verifyBudget.take(now)) return this.#refuse('flood', 'over the total verification budget');

    const seconds = Math.floor(now / 1000);
    const clock = this.#trustedClock ? seconds : undefined;
    const effectiveNow = clock === undefined ? this.#timeFloor : this.#timeFloor === undefined ? clock : Math.max(clock, this.#timeFloor);

    let chain: ChainEntry;
    try {
      chain = this.#resolve(b, now, effectiveNow);
    } catch (err) {
      if (err instanceof IotupdError) return this.#refuse('untrusted', err.message);
      throw err;
    }
    this.stats.verifications += 1;
    if (!ed25519Verify(chain.signerKey, signingInput(datagram), b.signature)) {
      return this.#refuse('forged', `beacon signature by ${signer} does not verify`);
    }
    const d = chain.delegation;
    if (d) {
      if (!d.products.includes('*') && !d.products.includes(b.product)) return this.#refuse('untrusted', `signer ${signer} is not delegated for product '${b.product}'`);
      if (b.sequence < d.minSequence || b.sequence > d.maxSequence) {
        return this.#refuse('untrusted', `sequence ${b.sequence} outside the delegated range ${d.minSequence}..${d.maxSequence}`);
      }
    }
    if (effectiveNow !== undefined && effectiveNow > b.expires) return this.#refuse('expired', `beacon expired at ${b.expires}`);
    if (clock !== undefined && b.issuedAt > clock + this.#skew) return this.#refuse('not-yet-valid', `beacon issued at ${b.issuedAt}, in the future`);
    // Re-read: the counter may have moved while this beacon waited (it cannot here, the filter is
    // synchronous, but the order keeps the table written only by verified beacons).
    const prev = this.#counters.peek(signer);
    if (prev !== undefined && b.counter <= prev) return this.#refuse('replay', `counter ${b.counter} of signer ${signer} is not above ${prev}`);
    this.#counters.set(signer, b.counter);

    return b.kind === 'halt' ? this.#halt(b, now) : b.kind === 'state' ? this.#state(b, now) : this.#announce(b, now);
  }

  #state(b: StateBeacon, now: number): AnnounceResult {
    this.stats.states += 1;
    return {
      type: 'state',
      state: {
        product: b.product,
        sequence: b.sequence,
        manifestId: new Uint8Array(b.manifestId),
        version: b.version,
        state: b.state,
        demand: { ...b.demand },
        reason: b.reason,
        counter: b.counter,
        issuedAt: b.issuedAt,
        expires: b.expires,
        signerKeyId: new Uint8Array(b.signerKeyId),
        receivedAt: now,
      },
    };
  }

  #resolve(b: Beacon, now: number, effectiveNow: number | undefined): ChainEntry {
    const key = chainKey(b);
    const hit = this.#chains.get(key);
    if (hit && now < hit.until && !this.#trust.isRevoked(b.signerKeyId)) return hit;
    this.stats.verifications += b.chain.length;
    const r = this.#trust.resolve(b.signerKeyId, b.chain, effectiveNow);
    const entry: ChainEntry = { signerKey: r.signerKey, delegation: r.delegation, until: now + CHAIN_CACHE_MS };
    this.#chains.set(key, entry);
    return entry;
  }

  #halt(b: HaltBeacon, now: number): AnnounceResult {
    const id = toHex(b.manifestId);
    const first = !this.#halts.has(id);
    const halt: Halt = {
      product: b.product,
      sequence: b.sequence,
      manifestId: new Uint8Array(b.manifestId),
      rollback: b.rollback,
      issuedAt: b.issuedAt,
      expires: b.expires,
      signerKeyId: new Uint8Array(b.signerKeyId),
      receivedAt: now,
    };
    this.#halts.set(id, halt);
    this.#releases.delete(id);
    this.stats.halts += 1;
    return { type: 'halt', halt, first };
  }

  #announce(b: AnnounceBeacon, now: number): AnnounceResult {
    const id = toHex(b.manifestId);
    if (this.#halts.has(id)) return this.#refuse('halted', `release ${id.slice(0, 16)} was halted`);
    if (b.sequence <= this.#installed) return this.#refuse('lower-sequence', `sequence ${b.sequence} is not above installed ${this.#installed}`);

    // Same-sequence rule (docs/publish.md): one sequence names one release. A second manifest id
    // under a sequence already seen means two signers disagree (a mistake, or a stolen key): the
    // device refuses both, for as long as it remembers the sequence, and waits for a higher one.
    const seq = this.#sequences.get(b.sequence);
    if (seq === undefined) {
      this.#sequences.set(b.sequence, { manifestId: id, conflict: undefined });
    } else if (seq.conflict) {
      seq.conflict.manifestIds.add(id);
      return this.#refuse('conflict', `sequence ${b.sequence} is announced by more than one release`);
    } else if (seq.manifestId !== id) {
      seq.conflict = { manifestIds: new Set([seq.manifestId, id]) };
      this.#releases.delete(seq.manifestId);
      this.stats.refused.conflict += 1;
      this.stats.conflicts += 1;
      return {
        type: 'conflict',
        product: b.product,
        sequence: b.sequence,
        manifestIds: [...seq.conflict.manifestIds].map((h) => new Uint8Array(Buffer.from(h, 'hex'))),
      };
    }

    const r = this.#releases.get(id);
    if (r && (r.retryAt === undefined || now < r.retryAt)) {
      this.stats.repeats += 1;
      return { type: 'repeat', manifestId: new Uint8Array(b.manifestId), sequence: b.sequence };
    }
    if (r) r.retryAt = undefined;
    else this.#releases.set(id, { sequence: b.sequence, retryAt: undefined, attempts: 0 });
    this.stats.offers += 1;
    return {
      type: 'offer',
      offer: {
        product: b.product,
        sequence: b.sequence,
        version: b.version,
        manifestId: new Uint8Array(b.manifestId),
        objectId: new Uint8Array(b.objectId),
        size: b.size,
        group: b.group,
        port: b.port,
        channel: b.channel,
        dataTimeout: b.dataTimeout,
        issuedAt: b.issuedAt,
        expires: b.expires,
        signerKeyId: new Uint8Array(b.signerKeyId),
        receivedAt: now,
      },
    };
  }
}
