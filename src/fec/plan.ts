// A recorded sequence of symbol operations on numbered slots of a symbol arena.
// Each op is four int32: opcode, destination slot, source slot, GF(256) coefficient.

export const OP_COPY = 0; // dst = src
export const OP_XOR = 1; // dst ^= src
export const OP_MULADD = 2; // dst ^= coeff * src
export const OP_MUL = 3; // dst = coeff * dst
export const OP_ZERO = 4; // dst = 0

export class PlanBuilder {
  ops: Int32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.ops = new Int32Array(capacity * 4);
  }
  push(op: number, dst: number, src: number, coeff: number): void {
    if (this.length * 4 >= this.ops.length) {
      const next = new Int32Array(this.ops.length * 2);
      next.set(this.ops);
      this.ops = next;
    }
    const i = this.length * 4;
    this.ops[i] = op;
    this.ops[i + 1] = dst;
    this.ops[i + 2] = src;
    this.ops[i + 3] = coeff;
    this.length++;
  }
  /**
   * The recorded plan. Compact (default): a copy of exactly its length, for plans that are kept
   * (the encoder caches them). Not compact: a view of the builder's buffer, for a plan run once
   * and dropped (a decoder's), saving the copy.
   */
  finish(compact = true): Plan {
    const ops = this.ops.subarray(0, this.length * 4);
    return { ops: compact ? ops.slice() : ops, length: this.length };
  }
}

export interface Plan {
  readonly ops: Int32Array;
  readonly length: number;
}
