/**
 * Release announcement beacons (docs/publish.md, "Beacon format"): signed datagrams a publisher
 * repeats on a product's announce channel. Three kinds: ANNOUNCE (a release exists, and where its
 * data is sent), HALT (stop a release; optionally roll back devices that installed it) and STATE
 * (whether the publisher serves or has paused a release's data, and why; sent on the product's
 * status channel for collectors, never on the announce channel).
 * All integers big-endian; sent raw (no Librecast message header), one beacon per datagram.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  'I' 0x49   |  'O' 0x4f     |  'T' 0x54     |  'B' 0x42       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  version = 1  | kind 1/2/3    |   total length L (u16)        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                signer key id (8 bytes, offset 8)              |
 * +                                                               +
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | chain count C |  C x (u16 length n, n bytes certificate)  ... |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | u64 counter | u64 issued-at (unix s) | u64 expires (unix s)  |
 * | u8 n, product (1..64 bytes UTF-8) | u64 sequence              |
 * | manifest id (32 bytes: SHA-256 of the signed manifest body)   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | ANNOUNCE: u8 n, version (0..64) | u8 n, object id (1..32)     |
 * |           u64 size | 16 data group | u16 data port            |
 * |           u32 data timeout (s) | u8 n, data channel name      |
 * | HALT:     u8 flags (bit 0: roll back devices that installed)  |
 * | STATE:    u8 state (0 serving, 1 paused) | u8 n, version     |
 * |           u32 live | u32 needing | u32 received | u32 waiting |
 * |           u32 outside | u32 gave-up | u8 n, reason (0..200)   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Ed25519 signature (64 bytes, offset L - 64) over              |
 * |  "iotupd beacon v1\0" || bytes [0, L - 64)                    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The signature covers the kind and the signer key id as well as the body, so one kind cannot be
 * turned into the other. Its context string differs from the manifest's ("iotupd manifest v1\0",
 * src/crypto/manifest.ts), so a beacon signature never verifies as a manifest signature or back.
 *
 * L is at most 1232 bytes: 1280 (IPv6 minimum MTU, RFC 8200 section 5) minus 40 (IPv6 header)
 * minus 8 (UDP), so a beacon never needs fragmentation or a Packet Too Big round trip.
 *
 * This module only encodes and decodes; it trusts nothing. Signing and verification (key chain,
 * product, expiry, replay) live in src/announce.
 */
import { formatIpv6, isMulticast, parseIpv6 } from '../channel/address.js';
import { DecodeError } from '../errors.js';

export const BEACON_VERSION = 1;
export const MAX_BEACON = 1232;
export const SIGNATURE_LENGTH = 64;
export const KEY_ID_LENGTH = 8;
export const MANIFEST_ID_LENGTH = 32;
export const MAX_CHAIN = 4;
export const MAX_PRODUCT = 64;
export const MAX_VERSION = 64;
export const MAX_OBJECT_ID = 32;
export const MAX_CHANNEL_NAME = 255;
export const MAX_STATE_REASON = 200;
/** Signature context: differs from every other signed structure of iotupd. */
export const SIGNATURE_CONTEXT = new TextEncoder().encode('iotupd beacon v1\0');
/** "IOTB": the first four bytes of every beacon. */
export const MAGIC = [0x49, 0x4f, 0x54, 0x42] as const;
const FIXED_HEADER = 17;
const U64_MAX = (1n << 64n) - 1n;

export const BeaconKind = { ANNOUNCE: 1, HALT: 2, STATE: 3 } as const;

/** What a publisher does with a release's data (STATE beacons). */
export const RELEASE_STATES = ['serving', 'paused'] as const;
export type ReleaseState = (typeof RELEASE_STATES)[number];

/**
 * The publisher's view of the devices of a release's rollout, from their status reports
 * (docs/publish.md "Pausing"): every count is of enrolled devices heard recently.
 */
export interface DemandCounts {
  /** Enrolled devices heard within the quiet time. */
  live: number;
  /** Of them, devices that still need the release's data now. */
  needing: number;
  /** Have the data: installing, installed, or running a later release. */
  received: number;
  /** In the rollout, but their wave or activation window has not opened yet. */
  waiting: number;
  /** Not in the rollout (device class, percentage, closed window). */
  outside: number;
  /** Failed or rolled this release back. */
  gaveUp: number;
}

export const DEMAND_FIELDS = ['live', 'needing', 'received', 'waiting', 'outside', 'gaveUp'] as const satisfies readonly (keyof DemandCounts)[];

/** Halt flag bits. */
export const HaltFlags = { ROLLBACK: 0x01 } as const;

interface BeaconCommon {
  /** First 8 bytes of SHA-256 of the signer's public key (src/crypto/keys.ts keyIdOf). */
  signerKeyId: Uint8Array;
  /** Certificates linking the signer to a device's trust root (src/crypto/certs.ts), 0..4. */
  chain: Uint8Array[];
  /** Per-signer monotonic counter: a receiver refuses a counter it has already passed. */
  counter: bigint;
  /** Unix seconds when this beacon was made. */
  issuedAt: number;
  /** Unix seconds after which this beacon must not be acted on. */
  expires: number;
  product: string;
  /** The release's manifest sequence number. */
  sequence: bigint;
  /** SHA-256 of the signed manifest body (Manifest.manifestId). */
  manifestId: Uint8Array;
  /** 64 bytes; all zero before signing. */
  signature: Uint8Array;
}

export interface AnnounceBeacon extends BeaconCommon {
  kind: 'announce';
  version: string;
  /** The fountain object id of the release's data. */
  objectId: Uint8Array;
  /** Image size in bytes (the manifest's size). */
  size: number;
  /** Where the release's data is sent: multicast group (RFC 5952 text) and UDP port. */
  group: string;
  port: number;
  /** Seconds after which a device that joined and received no data gives up and listens again. */
  dataTimeout: number;
  /** The Librecast channel name the group was derived from (informative; the group decides). */
  channel: string;
}

export interface HaltBeacon extends BeaconCommon {
  kind: 'halt';
  /** Devices that installed this release roll back to their previous version. */
  rollback: boolean;
}

export interface StateBeacon extends BeaconCommon {
  kind: 'state';
  state: ReleaseState;
  version: string;
  demand: DemandCounts;
  /** Why, in words (0..200 bytes UTF-8). */
  reason: string;
}

export type Beacon = AnnounceBeacon | HaltBeacon | StateBeacon;

/** Why bytes are not a beacon; receivers count drops by this. */
export type BeaconFault = 'short' | 'magic' | 'version' | 'kind' | 'length' | 'chain' | 'field' | 'trailing';

export class BeaconDecodeError extends DecodeError {
  readonly fault: BeaconFault;
  constructor(fault: BeaconFault, message: string) {
    super(message, 'ERR_DECODE_BEACON');
    this.fault = fault;
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function fieldError(message: string): BeaconDecodeError {
  return new BeaconDecodeError('field', `beacon: ${message}`);
}

function checkSeconds(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw fieldError(`${name} must be a non-negative integer of seconds, got ${v}`);
}

function checkU64(name: string, v: bigint): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw fieldError(`${name} must be a u64`);
}

function checkFixed(name: string, b: Uint8Array, n: number): void {
  if (!(b instanceof Uint8Array) || b.length !== n) throw fieldError(`${name} must be ${n} bytes`);
}

function strLength(name: string, s: string, min: number, max: number): number {
  const n = utf8.encode(s).length;
  if (n < min || n > max) throw fieldError(`${name} must be ${min} to ${max} bytes, got ${n}`);
  return n;
}

/** Validates every field a decoder would check; throws BeaconDecodeError('field' | 'chain' | 'length'). */
function check(b: Beacon): number {
  checkFixed('signer key id', b.signerKeyId, KEY_ID_LENGTH);
  checkFixed('manifest id', b.manifestId, MANIFEST_ID_LENGTH);
  checkFixed('signature', b.signature, SIGNATURE_LENGTH);
  if (b.chain.length > MAX_CHAIN) throw new BeaconDecodeError('chain', `beacon: chain of ${b.chain.length} certificates, at most ${MAX_CHAIN}`);
  checkU64('counter', b.counter);
  checkU64('sequence', b.sequence);
  if (b.sequence === 0n) throw fieldError('sequence 0');
  checkSeconds('issued-at', b.issuedAt);
  checkSeconds('expires', b.expires);
  if (b.expires <= b.issuedAt) throw fieldError('expires must be after issued-at');
  let n = FIXED_HEADER;
  for (const c of b.chain) {
    if (c.length < 1 || c.length > MAX_BEACON) throw new BeaconDecodeError('chain', `beacon: certificate of ${c.length} bytes`);
    n += 2 + c.length;
  }
  n += 24 + 1 + strLength('product', b.product, 1, MAX_PRODUCT) + 8 + MANIFEST_ID_LENGTH;
  if (b.kind === 'announce') {
    n += 1 + strLength('version', b.version, 0, MAX_VERSION);
    if (b.objectId.length < 1 || b.objectId.length > MAX_OBJECT_ID) throw fieldError(`object id must be 1 to ${MAX_OBJECT_ID} bytes`);
    n += 1 + b.objectId.length;
    checkSeconds('size', b.size);
    let group: Uint8Array;
    try {
      group = parseIpv6(b.group);
    } catch {
      throw fieldError(`data group '${b.group}' is not an IPv6 address`);
    }
    if (!isMulticast(group)) throw fieldError(`data group ${b.group} is not multicast`);
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 0xffff) throw fieldError(`data port ${b.port} out of range`);
    if (!Number.isInteger(b.dataTimeout) || b.dataTimeout < 1 || b.dataTimeout > 0xffffffff) throw fieldError('data timeout must be 1 .. 2^32-1 seconds');
    n += 8 + 16 + 2 + 4 + 1 + strLength('channel name', b.channel, 0, MAX_CHANNEL_NAME);
  } else if (b.kind === 'halt') {
    n += 1;
  } else if (b.kind === 'state') {
    if (!RELEASE_STATES.includes(b.state)) throw fieldError(`unknown release state '${String(b.state)}'`);
    n += 1 + 1 + strLength('version', b.version, 0, MAX_VERSION);
    for (const f of DEMAND_FIELDS) {
      const v = b.demand[f];
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw fieldError(`demand ${f} must be a u32, got ${v}`);
    }
    n += 4 * DEMAND_FIELDS.length + 1 + strLength('reason', b.reason, 0, MAX_STATE_REASON);
  } else {
    throw new BeaconDecodeError('kind', `beacon: unknown kind '${String((b as { kind: unknown }).kind)}'`);
  }
  n += SIGNATURE_LENGTH;
  if (n > MAX_BEACON) throw new BeaconDecodeError('length', `beacon: ${n} bytes, more than the ${MAX_BEACON} that fit one 1280-byte IPv6 packet`);
  return n;
}

export function encodingLength(b: Beacon): number {
  return check(b);
}

/**
 * Writes the beacon into `buf` at `offset` (a fresh array if omitted) and returns the written view.
 * Throws BeaconDecodeError for a beacon that decode would refuse (too long, bad field).
 */
export function encode(b: Beacon, buf?: Uint8Array, offset = 0): Uint8Array {
  const length = check(b);
  const out = buf ?? new Uint8Array(length);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < length) {
    throw new RangeError(`beacon: need ${length} bytes at offset ${offset}, buffer has ${out.length}`);
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, length);
  let p = 0;
  const u8 = (v: number): void => {
    view.setUint8(p, v);
    p += 1;
  };
  const u16 = (v: number): void => {
    view.setUint16(p, v);
    p += 2;
  };
  const u32 = (v: number): void => {
    view.setUint32(p, v);
    p += 4;
  };
  const u64 = (v: bigint): void => {
    view.setBigUint64(p, v);
    p += 8;
  };
  const raw = (v: Uint8Array): void => {
    out.set(v, offset + p);
    p += v.length;
  };
  const str8 = (s: string): void => {
    const e = utf8.encode(s);
    u8(e.length);
    raw(e);
  };
  for (const m of MAGIC) u8(m);
  u8(BEACON_VERSION);
  u8(b.kind === 'announce' ? BeaconKind.ANNOUNCE : b.kind === 'halt' ? BeaconKind.HALT : BeaconKind.STATE);
  u16(length);
  raw(b.signerKeyId);
  u8(b.chain.length);
  for (const c of b.chain) {
    u16(c.length);
    raw(c);
  }
  u64(b.counter);
  u64(BigInt(b.issuedAt));
  u64(BigInt(b.expires));
  str8(b.product);
  u64(b.sequence);
  raw(b.manifestId);
  if (b.kind === 'announce') {
    str8(b.version);
    u8(b.objectId.length);
    raw(b.objectId);
    u64(BigInt(b.size));
    raw(parseIpv6(b.group));
    u16(b.port);
    u32(b.dataTimeout);
    str8(b.channel);
  } else if (b.kind === 'halt') {
    u8(b.rollback ? HaltFlags.ROLLBACK : 0);
  } else {
    u8(RELEASE_STATES.indexOf(b.state));
    str8(b.version);
    for (const f of DEMAND_FIELDS) u32(b.demand[f]);
    str8(b.reason);
  }
  raw(b.signature);
  if (p !== length) throw new Error(`beacon: wrote ${p} bytes, computed ${length}`);
  return out.subarray(offset, offset + length);
}

/** The bytes the signature covers: the context string, then every beacon byte before the signature. */
export function signingInput(beacon: Uint8Array): Uint8Array {
  if (beacon.length < FIXED_HEADER + SIGNATURE_LENGTH) throw new BeaconDecodeError('short', `beacon: ${beacon.length} bytes`);
  const out = new Uint8Array(SIGNATURE_CONTEXT.length + beacon.length - SIGNATURE_LENGTH);
  out.set(SIGNATURE_CONTEXT);
  out.set(beacon.subarray(0, beacon.length - SIGNATURE_LENGTH), SIGNATURE_CONTEXT.length);
  return out;
}

/** Fills the signature field of an encoded beacon in place. */
export function setSignature(beacon: Uint8Array, signature: Uint8Array): void {
  checkFixed('signature', signature, SIGNATURE_LENGTH);
  beacon.set(signature, beacon.length - SIGNATURE_LENGTH);
}

/**
 * Reads one beacon from `buf` at `offset`; its length comes from the L field. Byte fields are
 * views into `buf` (no copy). Bytes after the beacon are not looked at (decodeDatagram refuses them).
 */
export function decode(buf: Uint8Array, offset = 0): Beacon {
  const avail = buf.length - offset;
  if (!Number.isInteger(offset) || offset < 0 || avail < FIXED_HEADER + SIGNATURE_LENGTH) {
    throw new BeaconDecodeError('short', `beacon: ${Math.max(0, avail)} bytes, need at least ${FIXED_HEADER + SIGNATURE_LENGTH}`);
  }
  for (let i = 0; i < 4; i++) if (buf[offset + i] !== MAGIC[i]) throw new BeaconDecodeError('magic', 'beacon: bad magic');
  const view = new DataView(buf.buffer, buf.byteOffset + offset, avail);
  const version = view.getUint8(4);
  if (version !== BEACON_VERSION) throw new BeaconDecodeError('version', `beacon: unsupported version ${version}`);
  const kindByte = view.getUint8(5);
  if (kindByte !== BeaconKind.ANNOUNCE && kindByte !== BeaconKind.HALT && kindByte !== BeaconKind.STATE) throw new BeaconDecodeError('kind', `beacon: unknown kind ${kindByte}`);
  const length = view.getUint16(6);
  if (length > MAX_BEACON || length < FIXED_HEADER + SIGNATURE_LENGTH) throw new BeaconDecodeError('length', `beacon: length field ${length} out of range`);
  if (length > avail) throw new BeaconDecodeError('length', `beacon: length field ${length}, only ${avail} bytes present`);
  const end = length - SIGNATURE_LENGTH;
  let p = 8;
  const need = (n: number): void => {
    if (p + n > end) throw fieldError(`truncated: need ${n} bytes at offset ${p}, the signed part ends at ${end}`);
  };
  const u8 = (): number => {
    need(1);
    return view.getUint8(p++);
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(p);
    p += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(p);
    p += 4;
    return v;
  };
  const u64 = (): bigint => {
    need(8);
    const v = view.getBigUint64(p);
    p += 8;
    return v;
  };
  const raw = (n: number): Uint8Array => {
    need(n);
    const v = buf.subarray(offset + p, offset + p + n);
    p += n;
    return v;
  };
  const str8 = (what: string, min: number, max: number): string => {
    const n = u8();
    if (n < min || n > max) throw fieldError(`${what} of ${n} bytes, allowed ${min} to ${max}`);
    try {
      return utf8Strict.decode(raw(n));
    } catch (err) {
      if (err instanceof BeaconDecodeError) throw err;
      throw fieldError(`${what} is not valid UTF-8`);
    }
  };
  const seconds = (what: string): number => {
    const v = u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fieldError(`${what} ${v} out of range`);
    return Number(v);
  };
  const signerKeyId = raw(KEY_ID_LENGTH);
  const nChain = u8();
  if (nChain > MAX_CHAIN) throw new BeaconDecodeError('chain', `beacon: chain of ${nChain} certificates, at most ${MAX_CHAIN}`);
  const chain: Uint8Array[] = [];
  for (let i = 0; i < nChain; i++) {
    const n = u16();
    if (n < 1) throw new BeaconDecodeError('chain', 'beacon: empty certificate');
    chain.push(raw(n));
  }
  const counter = u64();
  const issuedAt = seconds('issued-at');
  const expires = seconds('expires');
  if (expires <= issuedAt) throw fieldError('expires is not after issued-at');
  const product = str8('product', 1, MAX_PRODUCT);
  const sequence = u64();
  if (sequence === 0n) throw fieldError('sequence 0');
  const manifestId = raw(MANIFEST_ID_LENGTH);
  const common = { signerKeyId, chain, counter, issuedAt, expires, product, sequence, manifestId };
  let beacon: Beacon;
  if (kindByte === BeaconKind.ANNOUNCE) {
    const version = str8('version', 0, MAX_VERSION);
    const nId = u8();
    if (nId < 1 || nId > MAX_OBJECT_ID) throw fieldError(`object id of ${nId} bytes`);
    const objectId = raw(nId);
    const size = seconds('size');
    const groupBytes = raw(16);
    if (!isMulticast(groupBytes)) throw fieldError('data group is not multicast');
    const port = u16();
    if (port === 0) throw fieldError('data port 0');
    const dataTimeout = u32();
    if (dataTimeout === 0) throw fieldError('data timeout 0');
    const channel = str8('channel name', 0, MAX_CHANNEL_NAME);
    beacon = { kind: 'announce', ...common, version, objectId, size, group: formatIpv6(groupBytes), port, dataTimeout, channel, signature: new Uint8Array(0) };
  } else if (kindByte === BeaconKind.HALT) {
    const flags = u8();
    if (flags & ~HaltFlags.ROLLBACK) throw fieldError(`unknown halt flags 0x${flags.toString(16)}`);
    beacon = { kind: 'halt', ...common, rollback: (flags & HaltFlags.ROLLBACK) !== 0, signature: new Uint8Array(0) };
  } else {
    const state = RELEASE_STATES[u8()];
    if (state === undefined) throw fieldError('unknown release state');
    const version = str8('version', 0, MAX_VERSION);
    const demand = {} as DemandCounts;
    for (const f of DEMAND_FIELDS) demand[f] = u32();
    const reason = str8('reason', 0, MAX_STATE_REASON);
    beacon = { kind: 'state', ...common, state, version, demand, reason, signature: new Uint8Array(0) };
  }
  if (p !== end) throw new BeaconDecodeError('trailing', `beacon: ${end - p} bytes between the body and the signature`);
  beacon.signature = buf.subarray(offset + end, offset + length);
  return beacon;
}

/** One beacon that must fill the whole datagram (a sender never appends anything). */
export function decodeDatagram(datagram: Uint8Array): Beacon {
  const b = decode(datagram);
  if (datagram.length >= 8) {
    const length = new DataView(datagram.buffer, datagram.byteOffset, datagram.length).getUint16(6);
    if (datagram.length !== length) throw new BeaconDecodeError('trailing', `beacon: ${datagram.length - length} bytes after the beacon`);
  }
  return b;
}
