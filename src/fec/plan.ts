// A recorded sequence of symbol operations on numbered slots of a symbol arena.
// Each op is four int32: opcode, destination slot, source slot, GF(256) coefficient.

export const OP_COPY = 0; // dst = src
export const OP_XOR = 1; // dst ^= src
export const OP_MULADD = 2; // dst ^= coeff * src
export const OP_MUL = 3; // dst = coeff * dst
export const OP_ZERO = 4; // dst = 0

/**
 * The ops buffer of the last run-once plan, lent to the next run-once builder: a receiver records
 * one decode plan per block, each about the same size (megabytes of ops at large K), so lending
 * the buffer keeps each decode from leaving that much garbage behind.
 */
let spareOps: Int32Array | undefined;

export class PlanBuilder {
  ops: Int32Array;
  length = 0;
  /**
   * `capacity` ops to start with (the buffer doubles when full). `reuse`: borrow the buffer a
   * run-once plan gave back (recyclePlan) when it is large enough.
   */
  constructor(capacity = 1024, reuse = false) {
    if (reuse && spareOps !== undefined && spareOps.length >= capacity * 4) {
      this.ops = spareOps;
      spareOps = undefined;
    } else this.ops = new Int32Array(capacity * 4);
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

/**
 * Gives a run-once plan's buffer (finish(false)) back for the next run-once builder; the plan
 * must not be used afterwards.
 */
export function recyclePlan(plan: Plan): void {
  const whole = new Int32Array(plan.ops.buffer, 0, plan.ops.buffer.byteLength >> 2);
  if (spareOps === undefined || whole.length > spareOps.length) spareOps = whole;
}

export interface Plan {
  readonly ops: Int32Array;
  readonly length: number;
}
