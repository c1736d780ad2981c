/**
 * Packet formats of the fountain (RaptorQ) transfer, see docs/protocol.md.
 *
 * Every datagram starts with the same 16-byte header so that a receiver sharing a UDP port with
 * other channels, objects and senders can tell packets apart by content (Node cannot filter by
 * destination group on a socket bound to [::]:port):
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |    magic 0x49 'I'   0x51 'Q'   |  version = 1  |     type      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     flags     | trailer len   |       extension length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * +                      object id (8 bytes)                      +
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     extensions (TLV: type u8, length u8, value), ext length   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     body (depends on type)                    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           trailer (trailer len bytes, e.g. auth tag)          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The trailer and extension lengths let the security layer add authentication tags, key ids or
 * nonces to any packet type without changing the layout of the body: a receiver that does not
 * verify still finds the body at the same place.
 */
import { DecodeError } from '../errors.js';

export const MAGIC_0 = 0x49; // 'I'
export const MAGIC_1 = 0x51; // 'Q'
export const FOUNTAIN_VERSION = 1;
export const HEADER_LENGTH = 16;
export const OBJECT_ID_LENGTH = 8;
export const OTI_LENGTH = 12;
export const PAYLOAD_ID_LENGTH = 4;

/** Packet types. 3..15 are reserved for the security layer (docs/security.md, src/crypto). */
export const PacketType = {
  DESCRIPTION: 1,
  SYMBOL: 2,
  MANIFEST: 3,
  SIGNATURE: 4,
  KEY: 5,
} as const;
export type PacketTypeNumber = (typeof PacketType)[keyof typeof PacketType];

/** Flag bits of header byte 4. */
export const Flags = {
  /** The trailer is an authentication tag (MAC / AEAD tag / signature) over bytes [0, length - trailer). */
  AUTH: 0x01,
  /** The body (not the header) is encrypted; receivers without the key must not interpret it. */
  ENCRYPTED: 0x02,
} as const;
/** Flags a version-1 receiver understands; other bits set mean "drop, do not interpret". */
export const KNOWN_FLAGS = Flags.AUTH | Flags.ENCRYPTED;

/** Hash algorithms for the whole-object digest. */
export const HashAlgorithm = {
  SHA256: 1,
  BLAKE3: 2,
} as const;
export type HashAlgorithmNumber = (typeof HashAlgorithm)[keyof typeof HashAlgorithm];
export const HASH_LENGTH = 32;

/**
 * Default symbol size T: 40 (IPv6) + 8 (UDP) + 16 (header) + 4 (payload id) + 1184 = 1252 bytes,
 * leaving 28 bytes of the 1280-byte IPv6 minimum MTU for extensions and an authentication trailer
 * (a 16-byte tag plus a 12-byte nonce/key id fit). 1184 is a multiple of 16 (any alignment Al).
 */
export const DEFAULT_SYMBOL_SIZE = 1184;
export const IPV6_MIN_MTU = 1280;
export const IPV6_UDP_OVERHEAD = 48;
/** RFC 6330 3.2: the ESI is 24 bits. */
export const MAX_ESI = 0xffffff;
export const MAX_NAME_LENGTH = 255;

/** Largest symbol size that keeps a symbol packet within `mtu` given extension and trailer bytes. */
export function maxSymbolSize(mtu = IPV6_MIN_MTU, extensionLength = 0, trailerLength = 0): number {
  return mtu - IPV6_UDP_OVERHEAD - HEADER_LENGTH - PAYLOAD_ID_LENGTH - extensionLength - trailerLength;
}

export interface Extension {
  type: number;
  value: Uint8Array;
}

export interface Header {
  type: number;
  flags: number;
  objectId: Uint8Array; // 8 bytes
  extensions: Extension[];
  /** Trailer bytes (e.g. an authentication tag); empty when trailer length is 0. */
  trailer: Uint8Array;
}

export interface DescriptionBody {
  /** RaptorQ Object Transmission Information, RFC 6330 3.3.2/3.3.3 (12 bytes, opaque here). */
  oti: Uint8Array;
  /** Object size in bytes; must equal the OTI transfer length F (checked by the receiver). */
  size: number;
  hashAlgorithm: number;
  hash: Uint8Array; // 32 bytes
  name: string;
}

export interface SymbolBody {
  sbn: number;
  esi: number;
  symbol: Uint8Array;
}

export type FountainPacket =
  | (Header & { kind: 'description'; description: DescriptionBody })
  | (Header & { kind: 'symbol'; symbol: SymbolBody })
  /** Types the transfer layer does not interpret (security packets, future types, encrypted bodies). */
  | (Header & { kind: 'other'; body: Uint8Array });

export interface HeaderInput {
  flags?: number;
  objectId: Uint8Array;
  extensions?: Extension[];
  trailer?: Uint8Array;
}

function extensionsLength(ext: readonly Extension[] | undefined): number {
  let n = 0;
  for (const e of ext ?? []) n += 2 + e.value.length;
  return n;
}

function checkHeaderInput(h: HeaderInput): void {
  if (h.objectId.length !== OBJECT_ID_LENGTH) throw new DecodeError(`object id must be ${OBJECT_ID_LENGTH} bytes`);
  const flags = h.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) throw new DecodeError('flags must be a byte');
  if ((h.trailer?.length ?? 0) > 0xff) throw new DecodeError('trailer longer than 255 bytes');
  if (extensionsLength(h.extensions) > 0xffff) throw new DecodeError('extensions longer than 65535 bytes');
  for (const e of h.extensions ?? []) {
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xff) throw new DecodeError('extension type must be a byte');
    if (e.value.length > 0xff) throw new DecodeError('extension value longer than 255 bytes');
  }
}

function writeHeader(buf: Uint8Array, offset: number, type: number, h: HeaderInput): number {
  const ext = h.extensions ?? [];
  const extLen = extensionsLength(ext);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  buf[offset] = MAGIC_0;
  buf[offset + 1] = MAGIC_1;
  buf[offset + 2] = FOUNTAIN_VERSION;
  buf[offset + 3] = type;
  buf[offset + 4] = h.flags ?? 0;
  buf[offset + 5] = h.trailer?.length ?? 0;
  dv.setUint16(offset + 6, extLen);
  buf.set(h.objectId, offset + 8);
  let p = offset + HEADER_LENGTH;
  for (const e of ext) {
    buf[p] = e.type;
    buf[p + 1] = e.value.length;
    buf.set(e.value, p + 2);
    p += 2 + e.value.length;
  }
  return p;
}

/**
 * The fixed header and the extension area of a packet, as `decodeHeader` reads them: where the
 * body and the trailer are, without interpreting either (docs/protocol.md "Packets").
 */
export interface PacketHeader {
  type: number;
  flags: number;
  trailerLength: number;
  extensionLength: number;
  /** Header bytes 8..15 (a view of the packet, not a copy). */
  objectId: Uint8Array;
  /** Offset of the body from the start of the packet: 16 + extension length. */
  bodyOffset: number;
  /** Offset of the trailer (the end of the body): packet length - trailer length. */
  bodyEnd: number;
}

/** Bytes `encodeHeader` writes for `h`: the fixed 16 bytes and the extension TLVs. */
export function headerLength(h: HeaderInput): number {
  return HEADER_LENGTH + extensionsLength(h.extensions);
}

/** Header, extensions and trailer: everything in a packet but its body. */
function overheadLength(h: HeaderInput): number {
  return headerLength(h) + (h.trailer?.length ?? 0);
}

/**
 * Writes the fixed header and the extension TLVs of a packet of `type` at `offset` of `buf` (a
 * new buffer of headerLength(h) bytes without one). The trailer length field is
 * `h.trailer.length`; the trailer itself is written by the packet encoders. Returns the bytes
 * written (a view of `buf`).
 */
export function encodeHeader(type: number, h: HeaderInput, buf?: Uint8Array, offset = 0): Uint8Array {
  checkHeaderInput(h);
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new DecodeError('type must be a byte');
  const len = headerLength(h);
  const out = buf ?? new Uint8Array(len);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < len) throw new DecodeError('buffer too small');
  const end = writeHeader(out, offset, type, h);
  if (end - offset !== len) throw new DecodeError(`internal: wrote ${end - offset} bytes, expected ${len}`);
  return out.subarray(offset, end);
}

/**
 * Reads the header of the packet in `bytes[offset..]` (the packet runs to the end of `bytes`).
 * Hostile input: the length is checked before every read, and magic, version, flags and the
 * extension and trailer lengths are checked against the packet. Offsets in the result are
 * relative to the packet's start. `into` is filled instead of a new object (a per-datagram
 * caller keeps one). Throws DecodeError (codes ERR_DECODE, ERR_DECODE_MAGIC, ERR_DECODE_VERSION,
 * ERR_DECODE_FLAGS).
 */
export function decodeHeader(bytes: Uint8Array, offset = 0, into?: PacketHeader): PacketHeader {
  const len = bytes.length - offset;
  if (!Number.isInteger(offset) || offset < 0 || len < HEADER_LENGTH) throw new DecodeError(`packet of ${Math.max(0, len)} bytes is shorter than the ${HEADER_LENGTH}-byte header`);
  if (bytes[offset] !== MAGIC_0 || bytes[offset + 1] !== MAGIC_1) throw new DecodeError('bad magic', 'ERR_DECODE_MAGIC');
  if (bytes[offset + 2] !== FOUNTAIN_VERSION) throw new DecodeError(`unsupported version ${bytes[offset + 2]}`, 'ERR_DECODE_VERSION');
  const flags = bytes[offset + 4] as number;
  // A receiver must not guess at a feature it does not know (docs/protocol.md "flags").
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new DecodeError(`unknown flags 0x${flags.toString(16)}`, 'ERR_DECODE_FLAGS');
  const trailerLength = bytes[offset + 5] as number;
  const extensionLength = ((bytes[offset + 6] as number) << 8) | (bytes[offset + 7] as number);
  if (HEADER_LENGTH + extensionLength + trailerLength > len) throw new DecodeError('extension and trailer lengths exceed the packet');
  const h = into ?? ({} as PacketHeader);
  h.type = bytes[offset + 3] as number;
  h.flags = flags;
  h.trailerLength = trailerLength;
  h.extensionLength = extensionLength;
  h.objectId = bytes.subarray(offset + 8, offset + HEADER_LENGTH);
  h.bodyOffset = HEADER_LENGTH + extensionLength;
  h.bodyEnd = len - trailerLength;
  return h;
}

/**
 * What fills the trailer of every packet a sender builds (the security layer's tag, nonce):
 * a sender built with one sets `flags` in each header, reserves `trailerLength` bytes at the end
 * of each packet, adds `extensions`, and calls `seal` once the rest of the packet is final.
 */
export interface Sealer {
  readonly flags: number;
  readonly trailerLength: number;
  readonly extensions?: Extension[];
  /** `packet` is the whole datagram; its last `trailerLength` bytes are to be written. */
  seal(packet: Uint8Array): void;
}

// ---------------------------------------------------------------------------------------------
// DESCRIPTION body:
//  0                   1                   2                   3
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                 OTI (12 bytes, RFC 6330 3.3.2 + 3.3.3)         |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                     object size (u64, bytes)                   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |   hash alg    |   name length |  hash (32 bytes) ...           |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |  name (UTF-8, name length bytes)                               |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const DESCRIPTION_FIXED = OTI_LENGTH + 8 + 2 + HASH_LENGTH;

export function descriptionEncodingLength(h: HeaderInput, d: DescriptionBody): number {
  return overheadLength(h) + DESCRIPTION_FIXED + new TextEncoder().encode(d.name).length;
}

export function encodeDescription(h: HeaderInput, d: DescriptionBody, buf?: Uint8Array, offset = 0): Uint8Array {
  checkHeaderInput(h);
  if (d.oti.length !== OTI_LENGTH) throw new DecodeError(`OTI must be ${OTI_LENGTH} bytes`);
  if (d.hash.length !== HASH_LENGTH) throw new DecodeError(`hash must be ${HASH_LENGTH} bytes`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new DecodeError('size must be a non-negative safe integer');
  if (!Number.isInteger(d.hashAlgorithm) || d.hashAlgorithm < 0 || d.hashAlgorithm > 0xff) throw new DecodeError('hash algorithm must be a byte');
  const name = new TextEncoder().encode(d.name);
  if (name.length > MAX_NAME_LENGTH) throw new DecodeError(`name longer than ${MAX_NAME_LENGTH} bytes`);
  const len = descriptionEncodingLength(h, d);
  const out = buf ?? new Uint8Array(len);
  if (out.length - offset < len) throw new DecodeError('buffer too small');
  let p = writeHeader(out, offset, PacketType.DESCRIPTION, h);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(d.oti, p);
  p += OTI_LENGTH;
  dv.setBigUint64(p, BigInt(d.size));
  p += 8;
  out[p] = d.hashAlgorithm;
  out[p + 1] = name.length;
  p += 2;
  out.set(d.hash, p);
  p += HASH_LENGTH;
  out.set(name, p);
  p += name.length;
  if (h.trailer) {
    out.set(h.trailer, p);
    p += h.trailer.length;
  }
  if (p - offset !== len) throw new DecodeError(`internal: wrote ${p - offset} bytes, expected ${len}`);
  return buf ? out.subarray(offset, offset + len) : out;
}

// ---------------------------------------------------------------------------------------------
// SYMBOL body (RFC 6330 3.2 FEC Payload ID, then one encoding symbol of T bytes):
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |      SBN      |          ESI (24 bits, big-endian)            |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                   symbol (T bytes, from the OTI)              |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

export function symbolEncodingLength(h: HeaderInput, symbolLength: number): number {
  return overheadLength(h) + PAYLOAD_ID_LENGTH + symbolLength;
}

export function encodeSymbol(h: HeaderInput, s: SymbolBody, buf?: Uint8Array, offset = 0): Uint8Array {
  checkHeaderInput(h);
  if (!Number.isInteger(s.sbn) || s.sbn < 0 || s.sbn > 0xff) throw new DecodeError('SBN must be 0..255');
  if (!Number.isInteger(s.esi) || s.esi < 0 || s.esi > MAX_ESI) throw new DecodeError('ESI must be 0..2^24-1');
  const len = symbolEncodingLength(h, s.symbol.length);
  const out = buf ?? new Uint8Array(len);
  if (out.length - offset < len) throw new DecodeError('buffer too small');
  let p = writeHeader(out, offset, PacketType.SYMBOL, h);
  out[p] = s.sbn;
  out[p + 1] = (s.esi >>> 16) & 0xff;
  out[p + 2] = (s.esi >>> 8) & 0xff;
  out[p + 3] = s.esi & 0xff;
  p += PAYLOAD_ID_LENGTH;
  out.set(s.symbol, p);
  p += s.symbol.length;
  if (h.trailer) {
    out.set(h.trailer, p);
    p += h.trailer.length;
  }
  if (p - offset !== len) throw new DecodeError(`internal: wrote ${p - offset} bytes, expected ${len}`);
  return buf ? out.subarray(offset, offset + len) : out;
}

/** Encode a packet of a type this layer does not interpret (e.g. MANIFEST), body given raw. */
export function encodeRaw(type: number, h: HeaderInput, body: Uint8Array): Uint8Array {
  checkHeaderInput(h);
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new DecodeError('type must be a byte');
  const len = overheadLength(h) + body.length;
  const out = new Uint8Array(len);
  let p = writeHeader(out, 0, type, h);
  out.set(body, p);
  p += body.length;
  if (h.trailer) out.set(h.trailer, p);
  return out;
}

/** True when the bytes start like a fountain packet of this version (cheap demultiplexing test). */
export function isFountainPacket(bytes: Uint8Array): boolean {
  return bytes.length >= HEADER_LENGTH && bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1 && bytes[2] === FOUNTAIN_VERSION;
}

/** The authenticated region: everything before the trailer. */
export function authenticatedBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length < HEADER_LENGTH) throw new DecodeError('packet shorter than the header');
  const trailer = bytes[5] ?? 0;
  if (trailer > bytes.length - HEADER_LENGTH) throw new DecodeError('trailer longer than packet');
  return bytes.subarray(0, bytes.length - trailer);
}

/**
 * Decode any fountain packet. Hostile input: every length is checked before use, and the result
 * views (subarrays) the input bytes rather than copying them.
 */
export function decodePacket(bytes: Uint8Array): FountainPacket {
  // One header object for every call (this function does not re-enter): the hot path allocates none.
  const { type, flags, extensionLength: extLen, trailerLength: trailerLen, objectId } = decodeHeader(bytes, 0, packetHeader);
  const extensions: Extension[] = extLen === 0 ? NO_EXTENSIONS : [];
  let p = HEADER_LENGTH;
  const extEnd = HEADER_LENGTH + extLen;
  while (p < extEnd) {
    if (p + 2 > extEnd) throw new DecodeError('truncated extension header');
    const t = bytes[p] as number;
    const l = bytes[p + 1] as number;
    if (p + 2 + l > extEnd) throw new DecodeError('extension value exceeds the extension area');
    extensions.push({ type: t, value: bytes.subarray(p + 2, p + 2 + l) });
    p += 2 + l;
  }
  const bodyEnd = bytes.length - trailerLen;
  const trailer = bytes.subarray(bodyEnd);
  if (type === PacketType.SYMBOL && (flags & Flags.ENCRYPTED) === 0) {
    // The hot path (one per datagram): no intermediate objects.
    if (bodyEnd - extEnd <= PAYLOAD_ID_LENGTH) throw new DecodeError('symbol packet without symbol');
    const sbn = bytes[extEnd] as number;
    const esi = ((bytes[extEnd + 1] as number) << 16) | ((bytes[extEnd + 2] as number) << 8) | (bytes[extEnd + 3] as number);
    return { kind: 'symbol', type, flags, objectId, extensions, trailer, symbol: { sbn, esi, symbol: bytes.subarray(extEnd + PAYLOAD_ID_LENGTH, bodyEnd) } };
  }
  const body = bytes.subarray(extEnd, bodyEnd);
  const header = { type, flags, objectId, extensions, trailer };
  if (flags & Flags.ENCRYPTED) return { ...header, kind: 'other', body };
  if (type === PacketType.DESCRIPTION) {
    if (body.length < DESCRIPTION_FIXED) throw new DecodeError('description body too short');
    const bdv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const oti = body.subarray(0, OTI_LENGTH);
    const size64 = bdv.getBigUint64(OTI_LENGTH);
    if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('object size too large');
    const hashAlgorithm = body[OTI_LENGTH + 8] as number;
    const nameLen = body[OTI_LENGTH + 9] as number;
    const hash = body.subarray(OTI_LENGTH + 10, OTI_LENGTH + 10 + HASH_LENGTH);
    if (body.length !== DESCRIPTION_FIXED + nameLen) throw new DecodeError('description name length does not match the body');
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(DESCRIPTION_FIXED));
    } catch {
      throw new DecodeError('description name is not valid UTF-8');
    }
    return { ...header, kind: 'description', description: { oti, size: Number(size64), hashAlgorithm, hash, name } };
  }
  return { ...header, kind: 'other', body };
}

const packetHeader = {} as PacketHeader;
const NO_EXTENSIONS: Extension[] = Object.freeze([]) as unknown as Extension[];

/** Hex form of an object id (16 lowercase hex digits), used on the CLI and in logs. */
export function objectIdHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

export function parseObjectIdHex(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new DecodeError('object id must be 16 hex digits');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
