// The few members of the WebAssembly JS API this project uses (src/fec/wasm-kernel.ts,
// src/crypto/aead.ts), typed here once: the project compiles with lib ES2022 and no DOM types.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
export interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemory;
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
