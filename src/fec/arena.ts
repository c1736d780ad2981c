// A block's symbols in one contiguous byte array, addressed by slot number, plus the kernel that
// replays plans on it (WebAssembly SIMD128 when available, pure TypeScript otherwise).
import type { Plan } from './plan.js';
import { runPlanTs, xorInto } from './symbol-ops.js';
import { createWasmArena, wasmAvailable, WASM_ARENA_LIMIT } from './wasm-kernel.js';
import { fecError } from './errors.js';

export interface Arena {
  /** slots * stride bytes; slot i starts at i * stride. Stable for the arena's lifetime. */
  readonly bytes: Uint8Array;
  readonly stride: number;
  /** Replays plan operations [from, to) (default: the whole plan). */
  run(plan: Plan, from?: number, to?: number): void;
  /** bytes[dst..] ^= bytes[src..] for one slot's length; offsets are byte offsets in bytes. */
  xor(dst: number, src: number): void;
  /** bytes[dst..] = XOR of the n slots at byte offsets srcs[0..n-1] (dst must not be among them). */
  xorSum(dst: number, srcs: Int32Array, n: number): void;
  /**
   * Hands the memory back for reuse by later arenas; the arena must not be used afterwards.
   * A reused arena's bytes are not zeroed: plans write every slot before reading it.
   */
  release(): void;
}

export type KernelKind = 'wasm' | 'ts';

let preferred: KernelKind = wasmAvailable() ? 'wasm' : 'ts';

/** Selects the symbol kernel for arenas created from now on (tests compare both). */
export function setKernel(kind: KernelKind): void {
  if (kind === 'wasm' && !wasmAvailable()) throw new Error('WebAssembly SIMD128 is not available');
  preferred = kind;
}

export function kernel(): KernelKind {
  return preferred;
}

class TsArena implements Arena {
  readonly bytes: Uint8Array;
  private readonly words: Int32Array | undefined;
  constructor(
    slots: number,
    readonly stride: number,
  ) {
    this.bytes = new Uint8Array(slots * stride);
    this.words = stride % 4 === 0 ? new Int32Array(this.bytes.buffer) : undefined;
  }
  run(plan: Plan, from = 0, to = plan.length): void {
    runPlanTs(this.bytes, this.words, plan, this.stride, from, to);
  }
  xor(dst: number, src: number): void {
    xorInto(this.bytes, dst, src, this.stride);
  }
  xorSum(dst: number, srcs: Int32Array, n: number): void {
    const t = this.stride;
    this.bytes.copyWithin(dst, srcs[0]!, srcs[0]! + t);
    for (let i = 1; i < n; i++) xorInto(this.bytes, dst, srcs[i]!, t);
  }
  release(): void {}
}

export function createArena(slots: number, stride: number, kind: KernelKind = preferred): Arena {
  const size = slots * stride;
  try {
    if (kind === 'wasm' && size <= WASM_ARENA_LIMIT) return createWasmArena(slots, stride);
    return new TsArena(slots, stride);
  } catch (e) {
    if (e instanceof RangeError) throw fecError('blockSize', `cannot allocate ${size} bytes for a block (K x T too large for this process)`);
    throw e;
  }
}
