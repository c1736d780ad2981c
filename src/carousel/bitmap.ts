/** A fixed-size set of chunk indexes, one bit each, with a running count of members. */
export class ChunkBitmap {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bitmap size ${size}`);
    this.size = size;
    const n = Math.ceil(size / 8);
    if (bytes === undefined) {
      this.bytes = new Uint8Array(n);
    } else {
      if (bytes.length !== n) throw new RangeError(`bitmap of ${size} bits needs ${n} bytes, got ${bytes.length}`);
      this.bytes = Uint8Array.from(bytes);
      // Bits past `size` in the last byte carry no meaning; clear them so count() is exact.
      if (size % 8 !== 0) this.bytes[n - 1]! &= (1 << size % 8) - 1;
      for (const b of this.bytes) this.#count += popcount8(b);
    }
  }

  get count(): number {
    return this.#count;
  }

  get full(): boolean {
    return this.#count === this.size;
  }

  has(i: number): boolean {
    return ((this.bytes[i >>> 3] ?? 0) & (1 << (i & 7))) !== 0;
  }

  /** Adds chunk i; returns false if it was already present. */
  add(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`chunk ${i} outside 0..${this.size - 1}`);
    const m = 1 << (i & 7);
    const b = this.bytes[i >>> 3]!;
    if (b & m) return false;
    this.bytes[i >>> 3] = b | m;
    this.#count += 1;
    return true;
  }

  delete(i: number): boolean {
    if (!this.has(i)) return false;
    this.bytes[i >>> 3]! &= ~(1 << (i & 7));
    this.#count -= 1;
    return true;
  }

  clear(): void {
    this.bytes.fill(0);
    this.#count = 0;
  }
}

function popcount8(b: number): number {
  let c = 0;
  for (let x = b; x; x &= x - 1) c += 1;
  return c;
}
