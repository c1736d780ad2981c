// The one rate limit of a send pipeline (docs/protocol.md "Pacing"): a token bucket in bytes on
// the wire, IPv6 and UDP headers included. I/O-free: the caller passes its clock.
import { IPV6_UDP_OVERHEAD } from '../wire/fountain.js';
import { UsageError } from '../errors.js';

/** 20 Mbit/s: safe on any LAN. */
export const DEFAULT_RATE_BPS = 20_000_000;

/** Bucket depth in time: 1 ms timer granularity then costs nothing. */
const BURST_MS = 4;
/** ... and at least this many datagrams, for low rates. */
const BURST_PACKETS = 8;

export interface PacerOptions {
  /** Bits per second, counting the IPv6 and UDP headers. Default DEFAULT_RATE_BPS. */
  rateBps?: number;
  /** Bucket depth in bytes on the wire (default: 4 ms at the rate, at least 8 datagrams of `packetBytes`). */
  burstBytes?: number;
  /** UDP payload of the pipeline's regular (largest usual) datagram: the symbol packet. */
  packetBytes: number;
}

/**
 * Token bucket. A datagram may leave once the bucket holds one regular datagram's worth
 * (`packetBytes` plus headers); its own size is then taken. A datagram larger than the regular
 * one (a digest batch with small symbols) takes the bucket below zero and the next waits until it
 * is paid back, so that over any interval t the bytes sent stay within burst + rate·t + one
 * datagram. Deciding before the datagram exists means no producer builds a datagram (or a block
 * encoder) ahead of its time.
 */
export class Pacer {
  readonly rateBps: number;
  readonly burstBytes: number;
  /** Bytes on the wire of a regular datagram: the level at which the next may go. */
  private readonly gate: number;
  private readonly bytesPerMs: number;
  private tokens = 0;
  private last: number | undefined;
  /** Datagrams and bytes on the wire (headers included) charged so far. */
  readonly stats = { packets: 0, wireBytes: 0 };

  constructor(opts: PacerOptions) {
    const rate = opts.rateBps ?? DEFAULT_RATE_BPS;
    if (!(rate > 0) || !Number.isFinite(rate)) throw new UsageError('rate must be positive');
    if (!Number.isInteger(opts.packetBytes) || opts.packetBytes < 1) throw new UsageError('packet size must be a positive integer');
    this.rateBps = rate;
    this.bytesPerMs = rate / 8 / 1000;
    this.gate = opts.packetBytes + IPV6_UDP_OVERHEAD;
    this.burstBytes = opts.burstBytes ?? Math.max(BURST_PACKETS * this.gate, BURST_MS * this.bytesPerMs);
    if (!(this.burstBytes >= this.gate)) throw new UsageError(`burst of ${this.burstBytes} bytes holds no datagram of ${this.gate} bytes`);
  }

  /** Milliseconds until the next datagram may go (0: now). The bucket starts full at the first call. */
  delay(now: number): number {
    if (this.last === undefined) {
      this.last = now;
      this.tokens = this.burstBytes;
    }
    this.tokens = Math.min(this.burstBytes, this.tokens + Math.max(0, now - this.last) * this.bytesPerMs);
    this.last = now;
    if (this.tokens >= this.gate) return 0;
    // Never 0 while short (float rounding), so that a caller that waits exactly this long is not
    // told to wait 0 ms forever.
    return Math.max(0.05, (this.gate - this.tokens) / this.bytesPerMs);
  }

  /** Charge a datagram of `bytes` (UDP payload) that went out after `delay` returned 0. */
  take(bytes: number): void {
    const wire = bytes + IPV6_UDP_OVERHEAD;
    this.tokens -= wire;
    this.stats.packets += 1;
    this.stats.wireBytes += wire;
  }
}
