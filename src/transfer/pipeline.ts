// The send pipeline (docs/protocol.md "Sender"): a chain of I/O-free datagram producers, the
// FountainSender first, then optional stages that wrap the one before (the security layer adds
// MANIFEST and SIGNATURE packets and seals), paced once, at its end, by one token bucket.
// Producers keep their own stopping rules (duration, symbols per block) and take `now` from the
// caller; none of them paces. The socket driver (sendFile) and the simulations run the same chain.
import type { FountainSender } from './sender.js';
import { Pacer, type PacerOptions } from './pacer.js';

export type ProducerStep = { datagram: Uint8Array; kind: string } | { wait: number } | { done: true };

/** One link of the chain. `{wait}` from a producer is a non-rate wait (e.g. an empty object's description interval). */
export interface DatagramProducer {
  next(now: number): ProducerStep;
  /**
   * True when the next call of `next` will build a block encoder (a RaptorQ precode solve of
   * several milliseconds): the driver sends the datagrams it holds first.
   */
  readonly nextBuildsEncoder: boolean;
}

/** Builds a stage around `inner`, the producer before it; `sender` is the chain's FountainSender (object id, OTI, hash). */
export type SendStage = (inner: DatagramProducer, sender: FountainSender) => DatagramProducer;

export interface SendPipelineOptions extends Omit<PacerOptions, 'packetBytes'> {
  stages?: readonly SendStage[];
}

export class SendPipeline implements DatagramProducer {
  readonly pacer: Pacer;
  /** The last producer of the chain: what the pacer releases. */
  private readonly head: DatagramProducer;

  constructor(
    readonly sender: FountainSender,
    opts: SendPipelineOptions = {},
  ) {
    this.pacer = new Pacer({ rateBps: opts.rateBps, burstBytes: opts.burstBytes, packetBytes: sender.packetLength });
    let head: DatagramProducer = sender;
    for (const stage of opts.stages ?? []) head = stage(head, sender);
    this.head = head;
  }

  /** The next datagram if the pacer lets one go now, else how long to wait, or done. */
  next(now: number): ProducerStep {
    const wait = this.pacer.delay(now);
    if (wait > 0) return { wait };
    const step = this.head.next(now);
    if ('datagram' in step) this.pacer.take(step.datagram.length);
    return step;
  }

  get nextBuildsEncoder(): boolean {
    return this.head.nextBuildsEncoder;
  }

  /** One slice of building the repair round's encoders ahead of time (FountainSender.prepare), for the pacer's waits. */
  prepare(): boolean {
    return this.sender.prepare();
  }
}
