import { randomBytes } from 'node:crypto';

// Wall-clock nanoseconds for the message header (Librecast: CLOCK_REALTIME, tv_sec * 1e9 + tv_nsec).
// Date.now() has millisecond resolution; anchor it once and advance with the monotonic clock.
const anchorNs = BigInt(Date.now()) * 1_000_000n;
const anchorHr = process.hrtime.bigint();

/** Nanoseconds since the Unix epoch. */
export function realtimeNs(): bigint {
  return anchorNs + (process.hrtime.bigint() - anchorHr);
}

/** A random u64 nonce (lc_getrandom reads /dev/urandom). */
export function randomU64(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * Librecast's per-channel Lamport clock (net.c): lc_msg_send stamps `++chan->seq`; a received
 * message moves the clock with `chan->seq = msg->seq > chan->seq ? msg->seq + 1 : chan->seq + 1`.
 * Wraps at 2^64 like the C uint64_t.
 */
export class LamportClock {
  #value: bigint;
  constructor(start = 0n) {
    this.#value = start & U64_MAX;
  }
  get value(): bigint {
    return this.#value;
  }
  /** The seq for the next message sent. */
  tick(): bigint {
    this.#value = (this.#value + 1n) & U64_MAX;
    return this.#value;
  }
  /** Account for a received message's seq. */
  observe(seq: bigint): void {
    this.#value = (seq > this.#value ? seq + 1n : this.#value + 1n) & U64_MAX;
  }
}
