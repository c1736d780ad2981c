// Deterministic network simulation for the I/O-free fountain sender and receiver: a virtual clock,
// per-receiver links with random or burst (Gilbert-Elliott) loss, duplication, delay and jitter
// (which reorders), late joins and sender restarts. No sockets, no real time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { otiFor } from '../../src/fec/index.js';
import { FountainSender, type SenderOptions } from '../../src/transfer/sender.js';
import { SendPipeline, type SendStage } from '../../src/transfer/pipeline.js';
import { FileStore, FountainReceiver, type ReceiverOptions } from '../../src/transfer/receiver/index.js';
import { BytesSource } from '../../src/transfer/source.js';
import { hashBytes } from '../../src/transfer/object.js';
import { HashAlgorithm } from '../../src/wire/fountain.js';
import { xorshift32 } from '../support/prng.js';

/** xorshift32 as floats in [0, 1) (seed 0 stands for 0x9e3779b9). */
export function rng(seed: number): () => number {
  const next = xorshift32(seed >>> 0 || 0x9e3779b9);
  return () => next() / 2 ** 32;
}

export function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  return out;
}

export interface LinkSpec {
  /** Independent loss probability 0..1. */
  loss?: number;
  /** Gilbert-Elliott burst loss: P(good->bad), P(bad->good); all packets lost while bad. */
  burst?: { enter: number; leave: number };
  duplicate?: number;
  /** Base one-way delay and uniform jitter in ms (jitter > packet spacing reorders). */
  delayMs?: number;
  jitterMs?: number;
  /** The receiver starts listening at this virtual time. */
  joinAtMs?: number;
  /** The receiver is "killed" (spool abandoned without flush) at this time and restarted `downMs` later. */
  crashAtMs?: number;
  downMs?: number;
}

export interface SimReceiver {
  link: LinkSpec;
  options?: Partial<Omit<ReceiverOptions, 'store'>>;
}

/** A sender's options and its pipeline's (rate, bucket depth, stages). */
export type SimSenderOptions = Partial<SenderOptions> & { rateBps?: number; burstBytes?: number; stages?: SendStage[] };

export interface SimSender {
  options?: SimSenderOptions;
  /** Replace the sender with a fresh one (ESIs start over) at this time. */
  restartAtMs?: number;
  startAtMs?: number;
}

export interface SimResult {
  receivers: FountainReceiver[];
  outs: string[];
  doneAtMs: (number | undefined)[];
  senders: FountainSender[];
  timeMs: number;
  dir: string;
  cleanup(): void;
}

export function makeObject(size: number, symbolSize: number, maxBlockSymbols: number, seed: number) {
  const data = randomBytes(size, seed);
  const oti = otiFor(size, symbolSize, { maxBlockSymbols, subBlocks: 1, alignment: 4 });
  const hash = hashBytes(HashAlgorithm.SHA256, data);
  return { data, oti, hash };
}

/** A FountainSender in a send pipeline paced at 100 Mbit/s unless told otherwise (the pipeline checks the rate). */
export function newPipeline(obj: ReturnType<typeof makeObject>, opts: SimSenderOptions = {}): SendPipeline {
  const { rateBps, burstBytes, stages, ...senderOpts } = opts;
  const sender = new FountainSender({
    oti: obj.oti,
    source: new BytesSource(obj.data),
    hash: obj.hash,
    name: 'sim.bin',
    ...senderOpts,
  });
  return new SendPipeline(sender, { rateBps: rateBps ?? 100_000_000, burstBytes, stages });
}

/** The FountainSender of newPipeline: unpaced when its `next` is called directly. */
export function newSender(obj: ReturnType<typeof makeObject>, opts: SimSenderOptions = {}): FountainSender {
  return newPipeline(obj, opts).sender;
}

interface Delivery {
  t: number;
  seq: number;
  r: number;
  bytes: Uint8Array;
}

class Heap {
  private a: Delivery[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Delivery | undefined {
    return this.a[0];
  }
  push(d: Delivery): void {
    const a = this.a;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p] as Delivery, a[i] as Delivery)) break;
      [a[p], a[i]] = [a[i] as Delivery, a[p] as Delivery];
      i = p;
    }
  }
  pop(): Delivery | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l] as Delivery, a[m] as Delivery)) m = l;
        if (r < a.length && less(a[r] as Delivery, a[m] as Delivery)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i] as Delivery, a[m] as Delivery];
        i = m;
      }
    }
    return top;
  }
}
function less(x: Delivery, y: Delivery): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}

/**
 * Run senders and receivers on a virtual clock until every receiver completes or `maxMs` passes.
 * Receivers write into a fresh temp dir through a FileStore (real files: the spool is part of what is tested).
 */
export function simulate(
  obj: ReturnType<typeof makeObject>,
  senders: SimSender[],
  receivers: SimReceiver[],
  opts: { seed: number; maxMs?: number },
): SimResult {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-sim-'));
  const random = rng(opts.seed);
  const outs = receivers.map((_, i) => join(dir, `out${i}.bin`));
  const mkReceiver = (i: number) => new FountainReceiver({ store: new FileStore({ out: outs[i] as string }), ...receivers[i]?.options });
  const live: (FountainReceiver | undefined)[] = receivers.map(() => undefined);
  const all: FountainReceiver[] = [];
  const crashed = receivers.map(() => false);
  const bad = receivers.map(() => false);
  const doneAt: (number | undefined)[] = receivers.map(() => undefined);
  const sims = senders.map((s) => ({ spec: s, sender: newPipeline(obj, s.options), ready: s.startAtMs ?? 0, restarted: false }));
  const heap = new Heap();
  let seq = 0;
  let now = 0;
  const maxMs = opts.maxMs ?? 600_000;

  const lifecycle = (t: number) => {
    receivers.forEach((spec, i) => {
      const l = spec.link;
      if (!live[i] && doneAt[i] === undefined && t >= (l.joinAtMs ?? 0)) {
        const down = crashed[i] && l.crashAtMs !== undefined && t < l.crashAtMs + (l.downMs ?? 0);
        if (!down) {
          const r = mkReceiver(i);
          live[i] = r;
          all.push(r);
        }
      }
      if (live[i] && !crashed[i] && l.crashAtMs !== undefined && t >= l.crashAtMs && doneAt[i] === undefined) {
        live[i]?.crash();
        live[i] = undefined;
        crashed[i] = true;
      }
    });
  };

  while (now < maxMs && doneAt.some((d) => d === undefined)) {
    // Next sender event.
    let si = -1;
    let st = Infinity;
    sims.forEach((s, i) => {
      if (s.ready < st) {
        st = s.ready;
        si = i;
      }
    });
    // Deliver everything due before it.
    while (heap.size > 0 && (heap.peek() as Delivery).t <= st) {
      const d = heap.pop() as Delivery;
      now = Math.max(now, d.t);
      lifecycle(now);
      const r = live[d.r];
      if (r && doneAt[d.r] === undefined && r.push(d.bytes) === 'complete') doneAt[d.r] = now;
    }
    if (si < 0 || st === Infinity) {
      if (heap.size === 0) break;
      continue;
    }
    now = Math.max(now, st);
    lifecycle(now);
    const s = sims[si] as (typeof sims)[number];
    if (s.spec.restartAtMs !== undefined && !s.restarted && now >= s.spec.restartAtMs) {
      s.restarted = true;
      s.sender = newPipeline(obj, s.spec.options);
    }
    const step = s.sender.next(now);
    if ('done' in step) {
      s.ready = Infinity;
      continue;
    }
    if ('wait' in step) {
      s.ready = now + step.wait;
      continue;
    }
    receivers.forEach((spec, i) => {
      const l = spec.link;
      let lost = false;
      if (l.burst) {
        if (bad[i]) {
          if (random() < l.burst.leave) bad[i] = false;
        } else if (random() < l.burst.enter) bad[i] = true;
        lost = bad[i] as boolean;
      }
      if (!lost && random() < (l.loss ?? 0)) lost = true;
      if (lost) return;
      const copies = random() < (l.duplicate ?? 0) ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const t = now + (l.delayMs ?? 0) + random() * (l.jitterMs ?? 0);
        heap.push({ t, seq: seq++, r: i, bytes: step.datagram });
      }
    });
  }
  for (const r of live) r?.close();
  return {
    receivers: all,
    outs,
    doneAtMs: doneAt,
    senders: sims.map((s) => s.sender.sender),
    timeMs: now,
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The receiver instance that finished for receiver slot i (the last one created for it). */
export function finalReceiver(res: SimResult, outIndex: number): FountainReceiver | undefined {
  return res.receivers.filter((r) => fileStoreOf(r).out === res.outs[outIndex]).pop();
}

/** The spool of a simulated receiver (they all write real files). */
export function fileStoreOf(r: FountainReceiver): FileStore {
  return r.store as FileStore;
}
