// Whole-object encoder and decoder over the source blocks of 4.4.1.2.
import { BlockDecoder } from './decoder.js';
import { BlockEncoder } from './encoder.js';
import { fecError } from './errors.js';
import type { Oti } from './oti.js';
import { validateOti } from './oti.js';
import type { SourceBlock } from './partition.js';
import { blockPartition } from './partition.js';

export class ObjectEncoder {
  static readonly LIVE_BLOCKS = 4;
  readonly oti: Oti;
  private readonly data: Uint8Array;
  private readonly blocks: SourceBlock[];
  private readonly encoders = new Map<number, BlockEncoder>();
  constructor(data: Uint8Array, oti: Oti) {
    validateOti(oti);
    if (!(data instanceof Uint8Array) || data.length !== oti.transferLength)
      throw fecError('oti', `object of ${data?.length} bytes, OTI says F=${oti.transferLength}`);
    this.oti = { ...oti };
    this.data = data;
    this.blocks = blockPartition(oti);
  }
  /** Encoding symbol (SBN, ESI); block encoders are built on first use. */
  symbol(sbn: number, esi: number): Uint8Array {
    const blk = this.blocks[sbn];
    if (!Number.isInteger(sbn) || blk === undefined) throw fecError('sbn', `SBN ${sbn} outside 0..${this.blocks.length - 1}`);
    let enc = this.encoders.get(sbn);
    if (enc === undefined) {
      const { symbolSize: t, subBlocks, alignment } = this.oti;
      enc = new BlockEncoder(this.data.subarray(blk.offset, blk.offset + blk.length), blk.k, t, subBlocks, alignment);
      // Keep the working memory of a few blocks only (rebuilt on demand, same symbols).
      if (this.encoders.size >= ObjectEncoder.LIVE_BLOCKS) {
        const [oldest, old] = this.encoders.entries().next().value!;
        old.close();
        this.encoders.delete(oldest);
      }
    } else this.encoders.delete(sbn);
    this.encoders.set(sbn, enc);
    return enc.symbol(esi);
  }
}

export class ObjectDecoder {
  readonly oti: Oti;
  private readonly blocks: SourceBlock[];
  private readonly decoders: (BlockDecoder | undefined)[];
  private remaining: number;
  constructor(oti: Oti) {
    validateOti(oti);
    this.oti = { ...oti };
    this.blocks = blockPartition(oti);
    this.decoders = this.blocks.map(() => undefined);
    this.remaining = this.blocks.length;
  }
  /** Adds a symbol; true once every source block is decoded. */
  add(sbn: number, esi: number, symbol: Uint8Array): boolean {
    const blk = this.blocks[sbn];
    if (!Number.isInteger(sbn) || blk === undefined) throw fecError('sbn', `SBN ${sbn} outside 0..${this.blocks.length - 1}`);
    let dec = this.decoders[sbn];
    if (dec === undefined) {
      const { symbolSize: t, subBlocks, alignment } = this.oti;
      dec = new BlockDecoder(blk.k, t, blk.length, subBlocks, alignment);
      this.decoders[sbn] = dec;
    }
    const wasDone = dec.done;
    if (dec.add(esi, symbol) && !wasDone) this.remaining--;
    return this.remaining === 0;
  }
  result(): Uint8Array | undefined {
    if (this.remaining !== 0) return undefined;
    const out = new Uint8Array(this.oti.transferLength);
    for (const blk of this.blocks) out.set(this.decoders[blk.sbn]!.result()!, blk.offset);
    return out;
  }
}
