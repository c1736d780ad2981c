// WebAssembly kernel: not built yet, the TypeScript kernel is used.
import type { Arena } from './arena.js';
export function wasmAvailable(): boolean {
  return false;
}
export function createWasmArena(_slots: number, _stride: number): Arena {
  throw new Error('no wasm');
}
