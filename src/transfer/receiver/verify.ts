import { bytesEqual, type Hasher } from '../object.js';
import type { BlockState } from './held.js';
import type { ReceiverStore } from './store.js';

/** Read-back size for the whole-object hash: fits the L2 cache, so the hash reads what the read just wrote. */
const HASH_CHUNK = 256 * 1024;

/**
 * The whole-object hash (docs/protocol.md "Completion"), fed in object order as blocks
 * complete: a block whose bytes are in memory anyway goes in directly when every block before it
 * is in; the others are read back from the store in HASH_CHUNK pieces as soon as every block
 * before them is done. So the object is hashed in one pass spread over the reception, instead of
 * being read back whole at the end.
 */
export class ObjectHash {
  /** Blocks 0 .. hashed-1 are in the hash. */
  private hashed = 0;

  constructor(
    private readonly hasher: Hasher,
    private readonly blocks: readonly BlockState[],
    private readonly scratch: (length: number) => Uint8Array,
  ) {}

  /** Block `b` is done; `bytes` are its bytes as they now are in the store, if the caller has them in memory. */
  completed(b: BlockState, bytes: Uint8Array | undefined, store: ReceiverStore): void {
    if (bytes && b.sbn === this.hashed) {
      this.hasher.update(bytes);
      this.hashed += 1;
    }
    this.catchUp(store);
  }

  /** Feed the blocks from `hashed` on that are done, read back from the store, up to the first one not done. */
  private catchUp(store: ReceiverStore): void {
    const h = this.hasher;
    for (let b = this.blocks[this.hashed]; b?.done; b = this.blocks[this.hashed]) {
      const buf = this.scratch(Math.min(HASH_CHUNK, b.length));
      for (let pos = 0; pos < b.length; pos += buf.length) h.update(store.readData(b.offset + pos, buf.subarray(0, Math.min(buf.length, b.length - pos))));
      this.hashed += 1;
    }
  }

  /** Every block is done: whether the object's bytes in the store have the hash `expected`. */
  matches(expected: Uint8Array, store: ReceiverStore): boolean {
    this.catchUp(store);
    return bytesEqual(this.hasher.digest(), expected);
  }
}
