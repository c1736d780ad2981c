/**
 * Loss estimate from gaps in the frames' 16-bit sequence numbers, as the original iotupc did
 * (`lost += seq - last - 1`), but per sender (several senders share a channel, each with its own
 * counter) and robust to wrap-around, reordering, duplicates and sender restarts.
 */

/** A forward jump larger than this is taken as a sender restart (resync), not as loss. */
export const MAX_GAP = 4096;
/** Senders tracked at most; more (spoofed addresses) are not tracked, so memory stays bounded. */
export const MAX_SOURCES = 1024;

export interface LossStats {
  /** Frames counted by the estimator (one per accepted sequence number). */
  received: number;
  /** Sequence numbers skipped: estimated lost frames. */
  lost: number;
  /** Frames that arrived after a later one (each cancels one counted loss). */
  reordered: number;
  /** Sender restarts detected (jumps > MAX_GAP). */
  resyncs: number;
  /** lost / (lost + received), 0 when nothing was seen. */
  estimate: number;
}

export class SeqLossEstimator {
  #last = new Map<string, number>();
  #received = 0;
  #lost = 0;
  #reordered = 0;
  #resyncs = 0;

  observe(seq: number, source = ''): void {
    const last = this.#last.get(source);
    if (last === undefined) {
      if (this.#last.size >= MAX_SOURCES) return;
      this.#last.set(source, seq);
      this.#received += 1;
      return;
    }
    const d = (seq - last) & 0xffff;
    if (d === 0) return; // same seq again: a duplicate (or a sender that never sets seq)
    if (d <= MAX_GAP) {
      this.#lost += d - 1;
      this.#received += 1;
      this.#last.set(source, seq);
    } else if (d >= 0x10000 - MAX_GAP) {
      // Behind the newest: a late frame that was counted as lost when the gap opened.
      this.#received += 1;
      this.#reordered += 1;
      if (this.#lost > 0) this.#lost -= 1;
    } else {
      this.#resyncs += 1;
      this.#received += 1;
      this.#last.set(source, seq);
    }
  }

  stats(): LossStats {
    const total = this.#lost + this.#received;
    return {
      received: this.#received,
      lost: this.#lost,
      reordered: this.#reordered,
      resyncs: this.#resyncs,
      estimate: total === 0 ? 0 : this.#lost / total,
    };
  }
}
