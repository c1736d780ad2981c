// The security layer of the fountain transfer, as two I/O-free pieces that sit around the
// transfer's own sender and receiver (docs/security.md "Integration"):
//   SecureSender   the security stage of the send pipeline (src/transfer/pipeline.ts): sends the
//                  signed manifest (fragmented, MANIFEST packets) and, when the manifest asks for it,
//                  signed digest batches (SIGNATURE packets) ahead of the datagrams they cover; the
//                  FountainSender before it seals its own datagrams with the group-key sealer.
//   ReceiveGuard   filters datagrams before the transfer receiver sees them: authenticates (and
//                  decrypts), assembles and verifies the manifest, holds everything back until a
//                  verified manifest is held, checks descriptions against it, checks digests, and
//                  checks each decoded block against the manifest's commitments.
import { createHash } from 'node:crypto';
import { DecodeError, SecurityError } from '../errors.js';
import { checkBlock } from './blocks.js';
import { DigestSigner, DigestVerifier, MAX_BATCH } from './digests.js';
import { fragmentManifest, ManifestAssembler } from './fragments.js';
import { checkDescription, inRollout, verifyManifest, type Manifest, type VerifyPolicy } from './manifest.js';
import { PacketAuth, type AuthSuite, type MacSuite } from './packet-auth.js';
import type { SigningKey } from './keys.js';
import type { TrustStore } from './trust.js';
import type { DatagramProducer, ProducerStep } from '../transfer/pipeline.js';
import { decodeHeader, decodePacket, encodeRaw, Flags, PacketType, type PacketHeader, type Sealer } from '../wire/fountain.js';
import { equalBytes } from './bytes.js';

export type { Sealer } from '../wire/fountain.js';

/** `a` (a header's object id view) equals `id` (not secret: a plain loop is fine). */
function sameId(a: Uint8Array, id: Uint8Array): boolean {
  if (a.length !== id.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== id[i]) return false;
  return true;
}

/** The header of a packet this sender built itself (sealers run on every datagram: one object reused). */
function ownHeader(packet: Uint8Array, into: PacketHeader): PacketHeader {
  try {
    return decodeHeader(packet, 0, into);
  } catch (err) {
    throw new SecurityError(`cannot seal: ${(err as Error).message}`, 'ERR_AUTH');
  }
}

export function fountainSealer(auth: PacketAuth): Sealer {
  const h = {} as PacketHeader;
  return {
    flags: Flags.AUTH | (auth.encrypts ? Flags.ENCRYPTED : 0),
    trailerLength: auth.trailerLength,
    seal: (packet) => auth.sealInPlace(packet, ownHeader(packet, h).bodyOffset),
  };
}

/**
 * A sealer for a group key that derives the per-object key from the object id in each packet's
 * header, so it can be handed to a sender before its object id is known.
 */
export function groupSealer(groupKey: Uint8Array, suite: AuthSuite = 'mac'): Sealer {
  const auths = new Map<string, PacketAuth>();
  const probe = new PacketAuth(groupKey, new Uint8Array(8), suite);
  const h = {} as PacketHeader;
  let lastId = new Uint8Array(8);
  let last: PacketAuth | undefined;
  return {
    flags: Flags.AUTH | (probe.encrypts ? Flags.ENCRYPTED : 0),
    trailerLength: probe.trailerLength,
    seal(packet) {
      const { objectId, bodyOffset } = ownHeader(packet, h);
      if (!last || !sameId(objectId, lastId)) {
        const id = Buffer.from(objectId.buffer, objectId.byteOffset, objectId.length).toString('hex');
        last = auths.get(id);
        if (!last) {
          last = new PacketAuth(groupKey, objectId.slice(), suite);
          auths.set(id, last);
        }
        lastId = objectId.slice();
      }
      last.sealInPlace(packet, bodyOffset);
    },
  };
}

export type SecureStep = ProducerStep;

export interface SecureSenderOptions {
  /** The producer before this stage: the FountainSender, built with the data sealer (or none, see `sealer`). */
  inner: DatagramProducer;
  objectId: Uint8Array;
  manifest: Uint8Array;
  /** Seals this stage's MANIFEST and SIGNATURE packets (fountainSealer / groupSealer); none = no group key. */
  sealer?: Sealer;
  /** Required when the manifest sets symbolDigests. */
  signingKey?: SigningKey;
  digests?: boolean;
  /** Datagrams per digest batch (<= 64) and copies of each batch (loss). */
  batchSize?: number;
  batchCopies?: number;
  /** Send the manifest every this many datagrams (default 200). */
  manifestEvery?: number;
}

/**
 * The security stage of a send pipeline (src/transfer/pipeline.ts), I/O-free: adds the MANIFEST
 * packets and, with digests, the SIGNATURE batches ahead of the datagrams they cover. It does not
 * pace: the pipeline's one token bucket paces the whole stream, these packets included.
 */
export class SecureSender implements DatagramProducer {
  readonly stats = { manifests: 0, batches: 0, datagrams: 0, bytes: 0 };
  private readonly queue: { datagram: Uint8Array; kind: string }[] = [];
  private readonly manifestPackets: Uint8Array[];
  private readonly signer: DigestSigner | undefined;
  private readonly batchSize: number;
  private readonly copies: number;
  private readonly every: number;
  private sinceManifest = Infinity;
  private innerDone = false;
  /** The inner producer's last non-rate wait, passed on when this stage has nothing queued. */
  private innerWait = 0;

  constructor(private readonly o: SecureSenderOptions) {
    this.manifestPackets = fragmentManifest(o.manifest).map((body) => this.frame(PacketType.MANIFEST, body));
    if (o.digests) {
      if (!o.signingKey) throw new SecurityError('signed digests need the signing key', 'ERR_KEY');
      this.signer = new DigestSigner(o.signingKey, o.objectId);
    }
    this.batchSize = Math.min(MAX_BATCH, Math.max(1, o.batchSize ?? MAX_BATCH));
    this.copies = Math.max(1, o.batchCopies ?? 2);
    this.every = o.manifestEvery ?? 200;
  }

  private frame(type: number, body: Uint8Array): Uint8Array {
    const sealer = this.o.sealer;
    const packet = encodeRaw(type, { objectId: this.o.objectId, flags: sealer?.flags ?? 0, trailer: sealer ? new Uint8Array(sealer.trailerLength) : undefined }, body);
    sealer?.seal(packet);
    return packet;
  }

  private get wantManifest(): boolean {
    return this.sinceManifest >= this.every;
  }

  /** The next call refills from the inner producer, and that builds an encoder. */
  get nextBuildsEncoder(): boolean {
    return !this.wantManifest && this.queue.length === 0 && !this.innerDone && this.o.inner.nextBuildsEncoder;
  }

  private refill(now: number): void {
    // Pull the next batch of inner datagrams, then queue the signed batch ahead of them.
    const got: { datagram: Uint8Array; kind: string }[] = [];
    const limit = this.signer ? this.batchSize : 1;
    // A batch that starts with cheap datagrams ends before the first one that needs an encoder
    // built (FountainSender.nextBuildsEncoder): the last source symbols of a round go out without
    // waiting for the repair round's precode solves; the next batch then builds them.
    const cheapStart = !this.o.inner.nextBuildsEncoder;
    this.innerWait = 0;
    while (got.length < limit && !this.innerDone) {
      if (cheapStart && got.length > 0 && this.o.inner.nextBuildsEncoder) break;
      const s = this.o.inner.next(now);
      if ('done' in s) this.innerDone = true;
      else if ('datagram' in s) got.push({ datagram: s.datagram, kind: s.kind });
      else {
        this.innerWait = s.wait;
        break;
      }
    }
    if (got.length === 0) return;
    if (this.signer) {
      const batch = this.frame(PacketType.SIGNATURE, this.signer.sign(got.map((g) => g.datagram)));
      this.stats.batches += 1;
      // Copies spread through the batch's first quarter, so one burst loss does not take them all.
      const spaced = got.slice();
      for (let c = this.copies - 1; c >= 1; c--) spaced.splice(Math.min(spaced.length, c * Math.ceil(this.batchSize / 4 / this.copies)), 0, { datagram: batch, kind: 'digests' });
      this.queue.push({ datagram: batch, kind: 'digests' }, ...spaced);
    } else {
      this.queue.push(...got);
    }
  }

  next(now: number): SecureStep {
    if (this.wantManifest) {
      // All fragments in a row: a late joiner holds the manifest after one manifest interval.
      const frag = this.manifestPackets[this.stats.manifests % this.manifestPackets.length] as Uint8Array;
      this.stats.manifests += 1;
      if (this.stats.manifests % this.manifestPackets.length === 0) this.sinceManifest = 0;
      this.count(frag);
      return { datagram: frag, kind: 'manifest' };
    }
    if (this.queue.length === 0) this.refill(now);
    const item = this.queue.shift();
    if (!item) return this.innerDone ? { done: true } : { wait: Math.max(0.05, this.innerWait) };
    this.sinceManifest += 1;
    this.count(item.datagram);
    return item;
  }

  private count(d: Uint8Array): void {
    this.stats.datagrams += 1;
    this.stats.bytes += d.length;
  }
}

export type DropReason =
  | 'malformed'
  | 'unauthenticated'
  | 'auth'
  | 'no-manifest'
  | 'foreign'
  | 'mismatch'
  | 'unsigned'
  | 'not-in-rollout'
  | 'manifest-rejected'
  | 'batch-rejected';

export type GuardResult =
  | { kind: 'deliver'; datagram: Uint8Array }
  | { kind: 'manifest'; manifest: Manifest }
  | { kind: 'consumed' }
  | { kind: 'drop'; reason: DropReason; code?: string };

export interface ReceiveGuardOptions {
  trust: TrustStore;
  policy: VerifyPolicy;
  /** Group key: when set, every packet must carry a valid tag. */
  groupKey?: Uint8Array;
  /** Cipher expected on encrypted packets (default chacha20-poly1305). */
  cipher?: Exclude<AuthSuite, MacSuite>;
  /** Tag expected on packets that are authenticated, not encrypted (default mac, HMAC-SHA256). */
  macSuite?: MacSuite;
  /** Refuse plaintext bodies (needs groupKey). */
  requireEncryption?: boolean;
  /**
   * The caller hands each datagram over and never reads it again (the network driver gets a
   * fresh buffer per datagram): decrypt in place instead of into a copy, which saves allocating
   * a buffer per packet. A refused datagram is left as it arrived either way.
   */
  decryptInPlace?: boolean;
  /** Require signed digest batches even if the manifest does not ask for them. */
  requireDigests?: boolean;
  deviceId?: Uint8Array;
  /** Verify only manifests for this object id (optional). */
  objectId?: Uint8Array;
}

export interface GuardStats {
  datagrams: number;
  delivered: number;
  manifestsVerified: number;
  blocksVerified: number;
  blocksRejected: number;
  drops: Record<DropReason, number>;
  /** SecurityError codes of rejected manifests (ERR_SIGNATURE, ERR_ROLLBACK, ...). */
  manifestErrors: Record<string, number>;
}

/** I/O-free receive-side filter; see the file comment. */
export class ReceiveGuard {
  readonly stats: GuardStats = {
    datagrams: 0,
    delivered: 0,
    manifestsVerified: 0,
    blocksVerified: 0,
    blocksRejected: 0,
    drops: {
      malformed: 0,
      unauthenticated: 0,
      auth: 0,
      'no-manifest': 0,
      foreign: 0,
      mismatch: 0,
      unsigned: 0,
      'not-in-rollout': 0,
      'manifest-rejected': 0,
      'batch-rejected': 0,
    },
    manifestErrors: {},
  };
  private held: Manifest | undefined;
  private digests: DigestVerifier | undefined;
  private readonly assembler = new ManifestAssembler();
  private readonly auths = new Map<string, { mac: PacketAuth; aead: PacketAuth }>();
  private readonly rejectedManifests = new Set<string>();
  private lastAuth: { mac: PacketAuth; aead: PacketAuth } | undefined;
  private lastAuthId = new Uint8Array(0);
  /** The header of the datagram being filtered (one object for all of them: filter runs per datagram). */
  private readonly header = {} as PacketHeader;

  constructor(private readonly o: ReceiveGuardOptions) {
    if (o.requireEncryption && !o.groupKey) throw new SecurityError('encryption needs a group key', 'ERR_KEY');
  }

  get manifest(): Manifest | undefined {
    return this.held;
  }

  private authFor(objectId: Uint8Array): { mac: PacketAuth; aead: PacketAuth } {
    if (this.lastAuth && sameId(this.lastAuthId, objectId)) return this.lastAuth;
    const a = this.authForSlow(objectId);
    this.lastAuth = a;
    this.lastAuthId = objectId.slice();
    return a;
  }

  private authForSlow(objectId: Uint8Array): { mac: PacketAuth; aead: PacketAuth } {
    const k = Buffer.from(objectId).toString('hex');
    let a = this.auths.get(k);
    if (!a) {
      const gk = this.o.groupKey as Uint8Array;
      a = { mac: new PacketAuth(gk, objectId, this.o.macSuite ?? 'mac'), aead: new PacketAuth(gk, objectId, this.o.cipher ?? 'chacha20-poly1305') };
      if (this.auths.size >= 16) this.auths.delete(this.auths.keys().next().value as string);
      this.auths.set(k, a);
    }
    return a;
  }

  private drop(reason: DropReason, code?: string): GuardResult {
    this.stats.drops[reason] += 1;
    return code ? { kind: 'drop', reason, code } : { kind: 'drop', reason };
  }

  /**
   * Feed one datagram as received. `now`: unix seconds from a trusted clock, or undefined.
   * A 'deliver' result carries the datagram the transfer receiver should see (decrypted, with
   * the ENCRYPTED flag cleared); everything else must not reach it.
   */
  filter(datagram: Uint8Array, now: number | undefined): GuardResult {
    this.stats.datagrams += 1;
    // Only the header is read here (decodeHeader: magic, version, flags, lengths against the
    // datagram); the receiver decodes the rest. Bodies are looked at only after authentication,
    // and descriptions in full.
    let h: PacketHeader;
    try {
      h = decodeHeader(datagram, 0, this.header);
    } catch (err) {
      if (err instanceof DecodeError) return this.drop('malformed');
      throw err;
    }
    const { type, flags, trailerLength, bodyOffset: bodyStart, bodyEnd } = h;
    const held = this.held;
    const dataPacket = type !== PacketType.MANIFEST && type !== PacketType.SIGNATURE;
    // Data before a verified manifest is never used: drop it before spending any cryptography.
    if (dataPacket && !held) return this.drop('no-manifest');
    // Once a manifest is held, other objects cost nothing more than this comparison.
    if (held && !sameId(h.objectId, held.objectId)) return this.drop('foreign');
    const enc = (flags & Flags.ENCRYPTED) !== 0;
    if (this.o.requireEncryption && dataPacket && !enc) return this.drop('unauthenticated');
    // With signed digests a data packet is checked against them first: a digest hit proves the
    // datagram is byte for byte one the signer sent (trailer included), so the group-key MAC
    // adds nothing and is skipped; a miss is dropped without spending a MAC on it.
    let signed = false;
    if (dataPacket && this.digests) {
      if (!this.digests.check(datagram)) return this.drop('unsigned');
      signed = true;
    }
    let plain = datagram;
    if (this.o.groupKey && !(signed && !enc)) {
      if (!(flags & Flags.AUTH)) return this.drop('unauthenticated');
      const auth = this.authFor(h.objectId);
      const a = enc ? auth.aead : auth.mac;
      if (trailerLength !== a.trailerLength) return this.drop('auth');
      plain = enc && !this.o.decryptInPlace ? datagram.slice() : datagram;
      if (!a.openInPlace(plain, bodyStart)) return this.drop('auth');
      // Decrypted: the transfer receiver must read the body as plaintext.
      if (enc) plain[4] = flags & ~Flags.ENCRYPTED;
    }
    const body = plain.subarray(bodyStart, bodyEnd);
    if (type === PacketType.MANIFEST) return this.onManifest(body, now);
    const m = held;
    if (!m) return this.drop('no-manifest');
    if (type === PacketType.SIGNATURE) {
      if (!this.digests) return this.drop('foreign');
      const r = this.digests.addBatch(body);
      return r === 'accepted' || r === 'duplicate' ? { kind: 'consumed' } : this.drop('batch-rejected', r);
    }
    if (this.digests && !signed) return this.drop('unsigned');
    if (type === PacketType.DESCRIPTION) {
      let pkt;
      try {
        pkt = decodePacket(plain);
      } catch {
        return this.drop('malformed');
      }
      if (pkt.kind !== 'description') return this.drop('malformed');
      try {
        checkDescription(m, { objectId: pkt.objectId, size: pkt.description.size, oti: pkt.description.oti, hash: pkt.description.hash });
      } catch {
        return this.drop('mismatch');
      }
    } else if (type === PacketType.SYMBOL) {
      // SBN is the first body byte (RFC 6330 3.2 FEC Payload ID); the manifest fixes Z.
      if (body.length === 0 || (body[0] as number) >= m.blockHashes.length) return this.drop('mismatch');
    } else {
      return this.drop('foreign');
    }
    this.stats.delivered += 1;
    return { kind: 'deliver', datagram: plain };
  }

  private onManifest(body: Uint8Array, now: number | undefined): GuardResult {
    let bytes: Uint8Array | null;
    try {
      bytes = this.assembler.push(body);
    } catch {
      return this.drop('malformed');
    }
    if (!bytes) return { kind: 'consumed' };
    if (this.held) {
      // Already holding a verified manifest: the repeats of it are expected.
      if (equalBytes(bytes, this.held.bytes)) return { kind: 'consumed' };
    }
    const id = createHash('sha256').update(bytes).digest('hex');
    if (this.rejectedManifests.has(id)) return this.drop('manifest-rejected', 'ERR_REPEAT');
    let m: Manifest;
    try {
      m = verifyManifest(bytes, this.o.trust, this.o.policy, now);
      if (this.o.objectId && !equalBytes(this.o.objectId, m.objectId)) throw new SecurityError('manifest for another object', 'ERR_MISMATCH');
      if (this.o.requireEncryption && !m.encryption) throw new SecurityError('manifest does not require encryption', 'ERR_POLICY');
    } catch (err) {
      if (!(err instanceof SecurityError)) throw err;
      this.remember(id);
      this.stats.manifestErrors[err.code] = (this.stats.manifestErrors[err.code] ?? 0) + 1;
      return this.drop('manifest-rejected', err.code);
    }
    if (this.held) {
      // A different, valid manifest while one is held (e.g. the next release): stay with the first.
      return this.drop('foreign');
    }
    if (this.o.deviceId && !inRollout(m, this.o.deviceId)) {
      this.remember(id);
      return this.drop('not-in-rollout');
    }
    this.held = m;
    this.stats.manifestsVerified += 1;
    if (m.symbolDigests || this.o.requireDigests) this.digests = new DigestVerifier(m.signerPublicKey, m.objectId);
    return { kind: 'manifest', manifest: m };
  }

  /** Remember a refused manifest (bounded, oldest forgotten) so its repeats cost one hash, not a verification. */
  private remember(id: string): void {
    if (this.rejectedManifests.size >= 256) this.rejectedManifests.delete(this.rejectedManifests.values().next().value as string);
    this.rejectedManifests.add(id);
  }

  /** Check a decoded source block against the manifest before it is written to its final place. */
  checkBlock(sbn: number, data: Uint8Array): boolean {
    const m = this.held;
    const ok = m !== undefined && checkBlock(m.blockHashes, sbn, data);
    if (ok) this.stats.blocksVerified += 1;
    else this.stats.blocksRejected += 1;
    return ok;
  }

  get digestStats(): DigestVerifier['stats'] | undefined {
    return this.digests?.stats;
  }
}
