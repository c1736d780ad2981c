/**
 * Fleet status report: one signed UDP datagram a device multicasts on its product's status
 * channel (docs/fleet-status.md, "Message format"). All integers big-endian; strings are a u8
 * length then UTF-8; the signature covers every byte before it, prefixed by a context string.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                     magic "IUST" (49 55 53 54)                |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  version = 1  |    reason     |  agent state  |     flags     |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |            counter (u64, per device, strictly increasing)     |
 *  +                                                               +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |            time (u64, ms since the Unix epoch, device clock)  |
 *  +                                                               +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |            uptime (u32, seconds)                              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  progress (u16, 1/10000) (30) |  installed sequence (u64) ... |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |      ... installed sequence   |  pending sequence (u64) ...   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |      ... pending sequence     |  device public key (32 bytes, |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   Ed25519, offset 46) ...     +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  | strings from offset 78, each u8 length + UTF-8: device id     |
 *  | (1..64), product (1..64), device class (0..64), installed     |
 *  | version (0..64), pending version (0..64), agent version       |
 *  | (0..32), last error (0..160)                                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  | signature (64 bytes, Ed25519 over "iotupd status v1\0" ||     |
 *  | every byte above)                                             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * flags: bit 0 progress present, bit 1 pending release present; other bits must be 0.
 * Decoding is exact: the datagram is one report and nothing else (no trailing bytes), every
 * reserved bit and enum value is checked, so one report has exactly one encoding and the
 * signed region is the datagram's own bytes (no re-encoding before verification).
 */
import type { KeyObject } from 'node:crypto';
import { DecodeError, ErrorCode } from '../errors.js';
import { ed25519Sign, ed25519Verify, publicKeyObject, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from '../crypto/keys.js';

export const MAGIC = Uint8Array.from([0x49, 0x55, 0x53, 0x54]);
export const VERSION = 1;
/** Context prefix of the signed message: a status signature can never pass for another iotupd signature. */
export const SIGNING_CONTEXT = new TextEncoder().encode('iotupd status v1\0');

/** Agent states, in wire order (the u8 is the index). */
export const AGENT_STATES = ['idle', 'waiting', 'receiving', 'verifying', 'installing', 'rebooting', 'confirming', 'installed', 'failed', 'rolled-back'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** Why the report was sent, in wire order. */
export const REPORT_REASONS = ['heartbeat', 'change', 'start'] as const;
export type ReportReason = (typeof REPORT_REASONS)[number];

/** Byte limits of the string fields. */
export const LIMITS = {
  deviceId: 64,
  product: 64,
  deviceClass: 64,
  installedVersion: 64,
  pendingVersion: 64,
  agentVersion: 32,
  lastError: 160,
} as const;

const FIXED = 78;
const STRING_FIELDS = ['deviceId', 'product', 'deviceClass', 'installedVersion', 'pendingVersion', 'agentVersion', 'lastError'] as const;
/** The largest valid report; anything longer is dropped before it is parsed. */
export const MAX_STATUS_BYTES = FIXED + STRING_FIELDS.length + Object.values(LIMITS).reduce((a, b) => a + b, 0) + SIGNATURE_LENGTH;
/** IPv6 (40) + UDP (8) header bytes, for the channel budget (docs/fleet-status.md "Rate budget"). */
export const IP_UDP_OVERHEAD = 48;

const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Everything a device signs. */
export interface StatusBody {
  reason: ReportReason;
  counter: bigint;
  /** Device clock, ms since the Unix epoch (informational: replay protection is the counter). */
  time: number;
  /** Seconds. */
  uptime: number;
  state: AgentState;
  /** 0..1 (carried in 1/10000 steps); absent when the state has no progress. */
  progress?: number;
  installedSequence: bigint;
  pendingSequence?: bigint;
  publicKey: Uint8Array;
  deviceId: string;
  product: string;
  deviceClass: string;
  installedVersion: string;
  pendingVersion?: string;
  agentVersion: string;
  lastError?: string;
}

export interface StatusReport extends StatusBody {
  signature: Uint8Array;
}

export type StatusFault = 'short' | 'oversized' | 'magic' | 'version' | 'reason' | 'state' | 'flags' | 'progress' | 'field' | 'utf8' | 'trailing';

/** A datagram that is not a well-formed status report; `fault` says which check failed. */
export class StatusDecodeError extends DecodeError {
  constructor(
    readonly fault: StatusFault,
    message: string,
  ) {
    super(`status report: ${message}`, ErrorCode.DECODE_STATUS);
  }
}

function strBytes(body: StatusBody, f: (typeof STRING_FIELDS)[number]): Uint8Array {
  const b = utf8.encode(body[f] ?? '');
  if (b.length > LIMITS[f]) throw new RangeError(`status report: ${f} is ${b.length} bytes, at most ${LIMITS[f]}`);
  if ((f === 'deviceId' || f === 'product') && b.length === 0) throw new RangeError(`status report: ${f} is empty`);
  return b;
}

/** Bytes of the whole datagram (signature included). */
export function encodingLength(body: StatusBody): number {
  let n = FIXED + SIGNATURE_LENGTH;
  for (const f of STRING_FIELDS) n += 1 + strBytes(body, f).length;
  return n;
}

function checkBody(b: StatusBody): void {
  if (b.counter < 0n || b.counter > U64_MAX) throw new RangeError('status report: counter out of u64 range');
  if (b.installedSequence < 0n || b.installedSequence > U64_MAX) throw new RangeError('status report: installed sequence out of u64 range');
  if (b.pendingSequence !== undefined && (b.pendingSequence < 0n || b.pendingSequence > U64_MAX)) throw new RangeError('status report: pending sequence out of u64 range');
  if (!Number.isSafeInteger(b.time) || b.time < 0) throw new RangeError('status report: time must be a non-negative integer (ms)');
  if (!Number.isInteger(b.uptime) || b.uptime < 0 || b.uptime > 0xffffffff) throw new RangeError('status report: uptime must be 0..2^32-1 seconds');
  if (b.progress !== undefined && !(b.progress >= 0 && b.progress <= 1)) throw new RangeError('status report: progress must be within 0..1');
  if (!AGENT_STATES.includes(b.state)) throw new RangeError(`status report: unknown state '${String(b.state)}'`);
  if (!REPORT_REASONS.includes(b.reason)) throw new RangeError(`status report: unknown reason '${String(b.reason)}'`);
  if (b.publicKey.length !== PUBLIC_KEY_LENGTH) throw new RangeError('status report: public key must be 32 bytes');
}

/** The body without its signature, written at `offset` of `buf`; returns the bytes written. */
function writeBody(body: StatusBody, buf: Uint8Array, offset: number): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = offset;
  buf.set(MAGIC, o);
  o += 4;
  const flags = (body.progress !== undefined ? 1 : 0) | (body.pendingSequence !== undefined || body.pendingVersion !== undefined ? 2 : 0);
  buf[o++] = VERSION;
  buf[o++] = REPORT_REASONS.indexOf(body.reason);
  buf[o++] = AGENT_STATES.indexOf(body.state);
  buf[o++] = flags;
  v.setBigUint64(o, body.counter);
  v.setBigUint64(o + 8, BigInt(body.time));
  v.setUint32(o + 16, body.uptime);
  v.setUint16(o + 20, body.progress === undefined ? 0 : Math.round(body.progress * 10000));
  v.setBigUint64(o + 22, body.installedSequence);
  v.setBigUint64(o + 30, body.pendingSequence ?? 0n);
  o += 38;
  buf.set(body.publicKey, o);
  o += PUBLIC_KEY_LENGTH;
  for (const f of STRING_FIELDS) {
    const s = strBytes(body, f);
    buf[o++] = s.length;
    buf.set(s, o);
    o += s.length;
  }
  return o - offset;
}

/** The exact bytes a signature covers: context string, then the body as encoded. */
export function signedMessage(bodyBytes: Uint8Array): Uint8Array {
  const m = new Uint8Array(SIGNING_CONTEXT.length + bodyBytes.length);
  m.set(SIGNING_CONTEXT);
  m.set(bodyBytes, SIGNING_CONTEXT.length);
  return m;
}

/**
 * Encode a report that already carries its signature into `buf` at `offset` (a fresh buffer when
 * none is given). Returns the datagram bytes (a view of `buf`).
 */
export function encode(report: StatusReport, buf?: Uint8Array, offset = 0): Uint8Array {
  checkBody(report);
  if (report.signature.length !== SIGNATURE_LENGTH) throw new RangeError('status report: signature must be 64 bytes');
  const n = encodingLength(report);
  const out = buf ?? new Uint8Array(offset + n);
  if (offset + n > out.length) throw new RangeError(`status report: needs ${n} bytes at offset ${offset}, buffer has ${out.length}`);
  const w = writeBody(report, out, offset);
  out.set(report.signature, offset + w);
  if (w + SIGNATURE_LENGTH !== n) throw new Error(`status report: wrote ${w + SIGNATURE_LENGTH} bytes, computed ${n}`);
  return out.subarray(offset, offset + n);
}

/** Sign `body` with the device's private key and encode it: the datagram to send. */
export function seal(body: StatusBody, privateKey: KeyObject): Uint8Array {
  checkBody(body);
  const n = encodingLength(body);
  const out = new Uint8Array(n);
  const w = writeBody(body, out, 0);
  out.set(ed25519Sign(privateKey, signedMessage(out.subarray(0, w))), w);
  return out;
}

/** Decode one datagram (exactly `length` bytes from `offset`); throws StatusDecodeError. */
export function decode(bytes: Uint8Array, offset = 0, length = bytes.length - offset): StatusReport {
  if (length > MAX_STATUS_BYTES) throw new StatusDecodeError('oversized', `${length} bytes, at most ${MAX_STATUS_BYTES}`);
  if (length < FIXED + STRING_FIELDS.length + SIGNATURE_LENGTH) throw new StatusDecodeError('short', `${length} bytes, at least ${FIXED + STRING_FIELDS.length + SIGNATURE_LENGTH}`);
  const b = bytes.subarray(offset, offset + length);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) throw new StatusDecodeError('magic', 'bad magic');
  if (b[4] !== VERSION) throw new StatusDecodeError('version', `version ${String(b[4])}, expected ${VERSION}`);
  const reason = REPORT_REASONS[b[5] as number];
  if (reason === undefined) throw new StatusDecodeError('reason', `reason ${String(b[5])}`);
  const state = AGENT_STATES[b[6] as number];
  if (state === undefined) throw new StatusDecodeError('state', `agent state ${String(b[6])}`);
  const flags = b[7] as number;
  if ((flags & ~3) !== 0) throw new StatusDecodeError('flags', `reserved flag bits set (0x${flags.toString(16)})`);
  const counter = v.getBigUint64(8);
  const time = v.getBigUint64(16);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) throw new StatusDecodeError('field', 'time out of range');
  const uptime = v.getUint32(24);
  const progressRaw = v.getUint16(28);
  if (progressRaw > 10000 || ((flags & 1) === 0 && progressRaw !== 0)) throw new StatusDecodeError('progress', `progress ${progressRaw}/10000`);
  const installedSequence = v.getBigUint64(30);
  const pendingSequence = v.getBigUint64(38);
  if ((flags & 2) === 0 && pendingSequence !== 0n) throw new StatusDecodeError('flags', 'pending sequence without the pending flag');
  const publicKey = b.slice(46, 78);
  let o = FIXED;
  const strings: Partial<Record<(typeof STRING_FIELDS)[number], string>> = {};
  for (const f of STRING_FIELDS) {
    if (o + 1 > length - SIGNATURE_LENGTH) throw new StatusDecodeError('short', `truncated before ${f}`);
    const n = b[o] as number;
    o += 1;
    if (n > LIMITS[f]) throw new StatusDecodeError('field', `${f} of ${n} bytes, at most ${LIMITS[f]}`);
    if (n === 0 && (f === 'deviceId' || f === 'product')) throw new StatusDecodeError('field', `${f} is empty`);
    if (o + n > length - SIGNATURE_LENGTH) throw new StatusDecodeError('short', `truncated in ${f}`);
    try {
      strings[f] = utf8Strict.decode(b.subarray(o, o + n));
    } catch {
      throw new StatusDecodeError('utf8', `${f} is not UTF-8`);
    }
    o += n;
  }
  if (o + SIGNATURE_LENGTH !== length) throw new StatusDecodeError('trailing', `${length - o - SIGNATURE_LENGTH} bytes after the last field`);
  const report: StatusReport = {
    reason,
    counter,
    time: Number(time),
    uptime,
    state,
    installedSequence,
    publicKey,
    deviceId: strings.deviceId as string,
    product: strings.product as string,
    deviceClass: strings.deviceClass ?? '',
    installedVersion: strings.installedVersion ?? '',
    agentVersion: strings.agentVersion ?? '',
    signature: b.slice(o, o + SIGNATURE_LENGTH),
  };
  if ((flags & 1) !== 0) report.progress = progressRaw / 10000;
  if ((flags & 2) !== 0) {
    report.pendingSequence = pendingSequence;
    report.pendingVersion = strings.pendingVersion ?? '';
  } else if ((strings.pendingVersion ?? '') !== '') throw new StatusDecodeError('flags', 'pending version without the pending flag');
  if ((strings.lastError ?? '') !== '') report.lastError = strings.lastError;
  return report;
}

/**
 * Whether the datagram `bytes` (exactly one report, as decoded) carries a valid signature by
 * `publicKey` (raw 32 bytes or a KeyObject). The signed region is the datagram itself.
 */
export function verify(bytes: Uint8Array, publicKey: Uint8Array | KeyObject): boolean {
  if (bytes.length < SIGNATURE_LENGTH) return false;
  let key: KeyObject;
  try {
    key = publicKey instanceof Uint8Array ? publicKeyObject(publicKey) : publicKey;
  } catch {
    return false;
  }
  const cut = bytes.length - SIGNATURE_LENGTH;
  return ed25519Verify(key, signedMessage(bytes.subarray(0, cut)), bytes.subarray(cut));
}
