/**
 * The Librecast 0.5.1 message (lc_msg_send / lc_msg_recv, `lc_message_head_t`): a packed 33-byte
 * header, all integers big-endian, then the payload, in one UDP datagram. lc_channel_send sends
 * raw bytes without this header.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +        timestamp (u64, ns since the Unix epoch, CLOCK_REALTIME)
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +        seq (u64, the channel's Lamport clock)                 +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +        rnd (u64, random nonce)                                +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |    opcode     |                                               |
 *  +-+-+-+-+-+-+-+-+   payload length (u64, offset 25)             +
 *  |                                                               |
 *  +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |               |  payload (length bytes, offset 33) ...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Decisions (docs/channels.md, "Message header"):
 * - A length field larger than the bytes that follow is an error ('length'), never a short read.
 * - `decodeDatagram` (what sockets use) also refuses bytes after the payload: lc_msg_send always
 *   sends exactly 33 + length bytes, so trailing bytes mean the datagram is not such a message.
 *   `decode(buf, offset)` reads one message inside a larger buffer and ignores what follows.
 * - Opcodes 0..6 (DATA..RET) are accepted; anything else is an error ('opcode'). LC_OP_MAX (7) is
 *   a sentinel, not an opcode, and Librecast 0.5.1 indexes its 7-entry handler table with the
 *   received byte, so no working peer sends another value.
 * - 64-bit fields are bigint; encode refuses values outside 0..2^64-1.
 */
import { DecodeError } from '../errors.js';

export const HEADER_SIZE = 33;
/** Largest payload one IPv6 UDP datagram (65535 - 8 bytes, no jumbograms) can carry after the header. */
export const MAX_PAYLOAD = 65535 - 8 - HEADER_SIZE;

/** lc_opcode_t (librecast/types.h LC_OPCODES). */
export const Opcode = { DATA: 0, PING: 1, PONG: 2, GET: 3, SET: 4, DEL: 5, RET: 6 } as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];
export type OpcodeName = keyof typeof Opcode;
const NAMES: readonly OpcodeName[] = ['DATA', 'PING', 'PONG', 'GET', 'SET', 'DEL', 'RET'];

export function isOpcode(v: unknown): v is Opcode {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < NAMES.length;
}

export function opcodeName(op: Opcode): OpcodeName {
  const name = NAMES[op];
  if (name === undefined) throw new RangeError(`librecast message: no opcode ${String(op)}`);
  return name;
}

export interface LibrecastMessage {
  /** Nanoseconds since the Unix epoch (the sender's CLOCK_REALTIME). */
  timestamp: bigint;
  /** Per-channel Lamport clock of the sender. */
  seq: bigint;
  /** Random nonce. */
  rnd: bigint;
  opcode: Opcode;
  payload: Uint8Array;
}

export type MessageFault = 'short' | 'length' | 'opcode' | 'trailing';

export class LibrecastMessageDecodeError extends DecodeError {
  readonly fault: MessageFault;
  constructor(fault: MessageFault, message: string) {
    super(message, 'ERR_DECODE_LIBRECAST_MESSAGE');
    this.fault = fault;
  }
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export function encodingLength(msg: Pick<LibrecastMessage, 'payload'>): number {
  return HEADER_SIZE + msg.payload.length;
}

function checkU64(name: string, v: bigint): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new RangeError(`librecast message: ${name} ${String(v)} is not a u64 bigint`);
}

/** Writes the message into `buf` at `offset` (a fresh array if omitted); returns the written bytes. */
export function encode(msg: LibrecastMessage, buf?: Uint8Array, offset = 0): Uint8Array {
  const { timestamp, seq, rnd, opcode, payload } = msg;
  checkU64('timestamp', timestamp);
  checkU64('seq', seq);
  checkU64('rnd', rnd);
  if (!isOpcode(opcode)) throw new RangeError(`librecast message: opcode ${String(opcode)} is not 0..6`);
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`librecast message: payload ${payload.length} bytes > ${MAX_PAYLOAD}`);
  const length = encodingLength(msg);
  const out = buf ?? new Uint8Array(length);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < length) {
    throw new RangeError(`librecast message: need ${length} bytes at offset ${offset}, buffer has ${out.length}`);
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, HEADER_SIZE);
  view.setBigUint64(0, timestamp);
  view.setBigUint64(8, seq);
  view.setBigUint64(16, rnd);
  view.setUint8(24, opcode);
  view.setBigUint64(25, BigInt(payload.length));
  out.set(payload, offset + HEADER_SIZE);
  return out.subarray(offset, offset + length);
}

/**
 * Reads one message from `buf` at `offset`; bytes after it are not looked at. `payload` is a
 * view into `buf` (no copy).
 */
export function decode(buf: Uint8Array, offset = 0): LibrecastMessage {
  const available = buf.length - offset;
  if (!Number.isInteger(offset) || offset < 0 || available < HEADER_SIZE) {
    throw new LibrecastMessageDecodeError('short', `librecast message: ${Math.max(0, available)} bytes, the header needs ${HEADER_SIZE}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_SIZE);
  const opcode = view.getUint8(24);
  if (!isOpcode(opcode)) throw new LibrecastMessageDecodeError('opcode', `librecast message: unknown opcode ${opcode}`);
  const len = view.getBigUint64(25);
  if (len > BigInt(available - HEADER_SIZE)) {
    throw new LibrecastMessageDecodeError('length', `librecast message: length field ${len} > ${available - HEADER_SIZE} payload bytes present`);
  }
  const start = offset + HEADER_SIZE;
  return {
    timestamp: view.getBigUint64(0),
    seq: view.getBigUint64(8),
    rnd: view.getBigUint64(16),
    opcode,
    payload: buf.subarray(start, start + Number(len)),
  };
}

/** Decodes a whole datagram: exactly one message, no bytes after its payload. */
export function decodeDatagram(datagram: Uint8Array): LibrecastMessage {
  const msg = decode(datagram, 0);
  const extra = datagram.length - encodingLength(msg);
  if (extra !== 0) {
    throw new LibrecastMessageDecodeError('trailing', `librecast message: ${extra} bytes after the ${msg.payload.length}-byte payload`);
  }
  return msg;
}
