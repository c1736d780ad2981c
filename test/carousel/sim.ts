// Deterministic helpers for the I/O-free carousel tests (not a test file itself).
import { blake3 } from '@noble/hashes/blake3.js';
import { CarouselReceiver, type CarouselPushResult as PushResult } from '../../src/carousel/index.js';
import { prng } from '../support/prng.js';
export { prng };


export function randomBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  return out;
}

/** A receiver plus the "disk" it writes to, like the real driver (write, then verify on completion). */
export class SimDevice {
  readonly disk: Uint8Array;
  readonly rx: CarouselReceiver;
  writes = 0;
  verifications = 0;
  done = false;
  /** Optional fault injection: called before a chunk is written, may alter it. */
  corrupt?: (offset: number, data: Uint8Array) => Uint8Array;

  constructor(size: number, rx = new CarouselReceiver()) {
    this.disk = new Uint8Array(size);
    this.rx = rx;
  }

  deliver(datagram: Uint8Array, source?: string): PushResult {
    const r = this.rx.push(datagram, source);
    if (r.kind === 'write') {
      const data = this.corrupt ? this.corrupt(r.offset, r.data) : r.data;
      this.disk.set(data, r.offset);
      this.writes += 1;
    }
    if (!this.done && this.rx.complete) {
      this.verifications += 1;
      const id = this.rx.identity!;
      const ok = Buffer.from(blake3(this.disk.subarray(0, id.size))).equals(Buffer.from(id.hash));
      this.rx.verified(ok);
      this.done = ok;
    }
    return r;
  }
}
