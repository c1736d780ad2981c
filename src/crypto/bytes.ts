// Canonical binary encoding used by every signed structure in src/crypto.
// All integers are big-endian; every variable-length field is length-prefixed; a reader must consume
// the input exactly (trailing bytes are an error), so one value has exactly one encoding.
import { timingSafeEqual } from 'node:crypto';
import { DecodeError } from '../errors.js';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export const U64_MAX = (1n << 64n) - 1n;

/** Growable byte writer. */
export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`u16 out of range: ${v}`);
    this.reserve(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.reserve(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > U64_MAX) throw new RangeError(`u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.len, v);
    this.len += 8;
    return this;
  }

  /** Raw bytes of a length both sides already know (fixed-size fields). */
  fixed(b: Uint8Array, expectedLength: number): this {
    if (b.length !== expectedLength) throw new RangeError(`expected ${expectedLength} bytes, got ${b.length}`);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** u8 length prefix + bytes. */
  bytes8(b: Uint8Array): this {
    this.u8(b.length);
    return this.fixed(b, b.length);
  }

  /** u16 length prefix + bytes. */
  bytes16(b: Uint8Array): this {
    this.u16(b.length);
    return this.fixed(b, b.length);
  }

  /** u32 length prefix + bytes. */
  bytes32(b: Uint8Array): this {
    this.u32(b.length);
    return this.fixed(b, b.length);
  }

  /** u8 length prefix + UTF-8. */
  str8(s: string): this {
    return this.bytes8(utf8.encode(s));
  }

  get length(): number {
    return this.len;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Bounds-checked reader over hostile bytes; every failure is a DecodeError. */
export class Reader {
  private pos = 0;
  private readonly view: DataView;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'structure',
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new DecodeError(`${this.what}: truncated (need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos})`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  fixed(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes8(max = 0xff): Uint8Array {
    const n = this.u8();
    if (n > max) throw new DecodeError(`${this.what}: field of ${n} bytes exceeds ${max}`);
    return this.fixed(n);
  }

  bytes16(max = 0xffff): Uint8Array {
    const n = this.u16();
    if (n > max) throw new DecodeError(`${this.what}: field of ${n} bytes exceeds ${max}`);
    return this.fixed(n);
  }

  bytes32(max: number): Uint8Array {
    const n = this.u32();
    if (n > max) throw new DecodeError(`${this.what}: field of ${n} bytes exceeds ${max}`);
    return this.fixed(n);
  }

  str8(max = 0xff): string {
    const b = this.bytes8(max);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw new DecodeError(`${this.what}: invalid UTF-8`);
    }
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Canonical encodings have no trailing bytes. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new DecodeError(`${this.what}: ${this.buf.length - this.pos} trailing bytes`);
    }
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new DecodeError(`not a hex string: '${s.slice(0, 40)}'`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function ascii(s: string): Uint8Array {
  return utf8.encode(s);
}
