// The WebAssembly SIMD128 symbol kernel (source: wasm/kernel.wat, bytes: wasm/kernel.generated.ts).
// Each arena owns one WebAssembly.Memory: GF(256) nibble tables, a plan buffer, then the slots.
import type { Arena } from './arena.js';
import { MUL } from './gf256.js';
import type { Plan } from './plan.js';
import { KERNEL_WASM_BASE64 } from './wasm/kernel.generated.js';
import { WA, type WasmMemory, type WasmModule } from '../wasm.js';

interface KernelExports {
  xor(dst: number, src: number, len: number): void;
  muladd(dst: number, src: number, c: number, len: number): void;
  mul(dst: number, c: number, len: number): void;
  run(plan: number, n: number, base: number, stride: number, len: number): void;
  xorn(dst: number, list: number, n: number, len: number): void;
}

const TABLES = 8192;
const LIST = TABLES; // 64 source addresses of a fused XOR
const LIST_MAX = 64;
const PLAN_BASE = LIST + LIST_MAX * 4;
const PLAN_CHUNK = 16384; // ops per run() call
const ARENA_BASE = PLAN_BASE + PLAN_CHUNK * 16;
const PAGE = 65536;
const MAX_PAGES = 65536;

/** Nibble tables: c*32 + i -> c*i, c*32 + 16 + i -> c*(i<<4). */
const NIBBLES = new Uint8Array(TABLES);
for (let c = 0; c < 256; c++) {
  for (let i = 0; i < 16; i++) {
    NIBBLES[c * 32 + i] = MUL[(c << 8) | i]!;
    NIBBLES[c * 32 + 16 + i] = MUL[(c << 8) | (i << 4)]!;
  }
}

let module: WasmModule | null | undefined;

function getModule(): WasmModule | null {
  if (module === undefined) {
    try {
      module = new WA.Module(Buffer.from(KERNEL_WASM_BASE64, 'base64'));
      // Probe: instantiation fails where SIMD128 is not supported.
      new WA.Instance(module, { env: { mem: new WA.Memory({ initial: 1 }) } });
    } catch {
      module = null;
    }
  }
  return module;
}

export function wasmAvailable(): boolean {
  return getModule() !== null;
}

/** Largest arena (bytes) a wasm32 memory can hold after the tables and plan buffer. */
export const WASM_ARENA_LIMIT = MAX_PAGES * PAGE - ARENA_BASE;

/** One instance of the kernel with its own memory; reused across arenas (see the pool below). */
interface KernelSlot {
  readonly k: KernelExports;
  readonly mem: WasmMemory;
  readonly planView: Int32Array;
  readonly listView: Int32Array;
  /** Bytes available for symbols after the tables and the plan buffer. */
  readonly capacity: number;
}

// Touching fresh memory costs page faults (about as much as replaying a K=1000 plan), so memories
// are pooled: an arena returned by release() is handed to the next block of similar size.
const POOL_MAX = 6;
const POOL_BYTES = 512 * 1024 * 1024;
const pool: KernelSlot[] = [];

function newSlot(size: number): KernelSlot {
  const mod = getModule();
  if (mod === null) throw new Error('WebAssembly SIMD128 is not available');
  const pages = Math.ceil((ARENA_BASE + size + 16) / PAGE);
  const mem = new WA.Memory({ initial: pages, maximum: pages });
  const inst = new WA.Instance(mod, { env: { mem } });
  new Uint8Array(mem.buffer, 0, TABLES).set(NIBBLES);
  return {
    k: inst.exports as unknown as KernelExports,
    mem,
    planView: new Int32Array(mem.buffer, PLAN_BASE, PLAN_CHUNK * 4),
    listView: new Int32Array(mem.buffer, LIST, LIST_MAX),
    capacity: pages * PAGE - ARENA_BASE,
  };
}

function takeSlot(size: number): KernelSlot {
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    const c = pool[i]!.capacity;
    // Reuse only memories that are not far larger than needed.
    if (c >= size && c <= size * 2 + 4 * PAGE && (best < 0 || c < pool[best]!.capacity)) best = i;
  }
  if (best >= 0) return pool.splice(best, 1)[0]!;
  return newSlot(size);
}

function giveSlot(slot: KernelSlot): void {
  let total = slot.capacity;
  for (const s of pool) total += s.capacity;
  while (pool.length > 0 && (pool.length >= POOL_MAX || total > POOL_BYTES)) total -= pool.shift()!.capacity;
  if (total <= POOL_BYTES) pool.push(slot);
}

class WasmArena implements Arena {
  readonly bytes: Uint8Array;
  private slot: KernelSlot | undefined;
  constructor(
    slots: number,
    readonly stride: number,
  ) {
    const size = slots * stride;
    this.slot = takeSlot(size);
    this.bytes = new Uint8Array(this.slot.mem.buffer, ARENA_BASE, size);
  }
  private live(): KernelSlot {
    if (this.slot === undefined) throw new Error('arena used after release()');
    return this.slot;
  }
  run(plan: Plan, from = 0, to = plan.length): void {
    const { planView, k } = this.live();
    for (let i = from; i < to; i += PLAN_CHUNK) {
      const n = Math.min(PLAN_CHUNK, to - i);
      planView.set(plan.ops.subarray(i * 4, (i + n) * 4));
      k.run(PLAN_BASE, n, ARENA_BASE, this.stride, this.stride);
    }
  }
  xor(dst: number, src: number): void {
    this.live().k.xor(ARENA_BASE + dst, ARENA_BASE + src, this.stride);
  }
  xorSum(dst: number, srcs: Int32Array, n: number): void {
    const { listView, k } = this.live();
    const m = Math.min(n, LIST_MAX);
    for (let i = 0; i < m; i++) listView[i] = ARENA_BASE + srcs[i]!;
    k.xorn(ARENA_BASE + dst, LIST, m, this.stride);
    for (let i = m; i < n; i++) k.xor(ARENA_BASE + dst, ARENA_BASE + srcs[i]!, this.stride);
  }
  release(): void {
    if (this.slot !== undefined) giveSlot(this.slot);
    this.slot = undefined;
  }
}

export function createWasmArena(slots: number, stride: number): Arena {
  return new WasmArena(slots, stride);
}
