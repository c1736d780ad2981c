/**
 * Token bucket for pacing a sender (I/O-free: the caller passes the clock in milliseconds).
 * The original iotupd paced by watching its socket send queue and had no rate limit at all
 * (its README lists "no flow control"); a fixed rate is what a shared network needs.
 */
export class TokenBucket {
  readonly bytesPerMs: number;
  readonly burst: number;
  #tokens: number;
  #last: number;

  /** `bitsPerSecond` > 0; `burst` in bytes (how much may go out back to back after a pause). */
  constructor(bitsPerSecond: number, burst: number, now: number) {
    if (!(bitsPerSecond > 0) || !Number.isFinite(bitsPerSecond)) throw new RangeError(`rate ${bitsPerSecond} bit/s`);
    if (!(burst > 0)) throw new RangeError(`burst ${burst} bytes`);
    this.bytesPerMs = bitsPerSecond / 8 / 1000;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /**
   * Takes `bytes` if the bucket holds them and returns 0; otherwise takes nothing and returns
   * how many milliseconds to wait before asking again.
   */
  take(bytes: number, now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) * this.bytesPerMs);
      this.#last = now;
    }
    // The epsilon absorbs float rounding, so a caller that waits exactly the returned time
    // is always let through on the next call.
    if (this.#tokens + 1e-6 >= bytes) {
      this.#tokens = Math.max(0, this.#tokens - bytes);
      return 0;
    }
    return (bytes - this.#tokens) / this.bytesPerMs;
  }
}
