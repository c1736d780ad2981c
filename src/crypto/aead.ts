// ChaCha20-Poly1305 (RFC 8439 section 2.8) on a WebAssembly SIMD128 module (wasm/chacha20poly1305.wat).
//
// Why not node:crypto: sealing one 1.2 KB datagram through createCipheriv / setAAD / update /
// final / getAuthTag costs several microseconds of object and call overhead for well under one
// of cipher work, and a sender or a device pays it for every packet
// (docs/decisions/0009-chacha20-poly1305-in-webassembly.md). Here one call sequence runs in one
// reused instance. The output is the standard AEAD: test/crypto/aead.test.ts checks it against
// the RFC's vectors and against OpenSSL's chacha20-poly1305 on random inputs.
import { SecurityError } from '../errors.js';
import { CHACHA20POLY1305_WASM_BASE64 } from './wasm/chacha20poly1305.generated.js';
import { WA, type WasmMemory, type WasmModule } from '../wasm.js';

interface AeadExports {
  memory: WasmMemory;
  blocks4(counter: number): void;
  xor(ptr: number, len: number, counter: number): void;
  polyInit(keyPtr: number): void;
  polyBlocks(ptr: number, blocks: number, hibit: number): void;
  polyFinish(outPtr: number): void;
}

let compiled: WasmModule | undefined;
let available: boolean | undefined;

function instantiate(): AeadExports {
  compiled ??= new WA.Module(Buffer.from(CHACHA20POLY1305_WASM_BASE64, 'base64'));
  return new WA.Instance(compiled, {}).exports as AeadExports;
}

/** The module's memory as bytes, grown to hold at least `bytes`. */
function memoryOf(x: AeadExports, bytes: number): Uint8Array {
  const have = x.memory.buffer.byteLength;
  if (bytes > have) x.memory.grow(Math.ceil((bytes - have) / PAGE));
  return new Uint8Array(x.memory.buffer);
}

const KEY = 0;
const NONCE = 32;
const KEYSTREAM = 256;
const TAG = 208;
const DATA = 1024;
const PAGE = 65536;
const FULL_BLOCK = 1 << 24;

const pad16 = (n: number) => (n + 15) & ~15;

/** One key; seal and open reuse one WebAssembly instance and its memory. Not thread-safe (none is needed). */
export class ChaCha20Poly1305 {
  private readonly x: AeadExports;
  private mem: Uint8Array;
  private view: DataView;

  /** False when this Node cannot instantiate the module (no WebAssembly SIMD128): use node:crypto. Tried once. */
  static available(): boolean {
    if (available === undefined) {
      try {
        compiled ??= new WA.Module(Buffer.from(CHACHA20POLY1305_WASM_BASE64, 'base64'));
        available = true;
      } catch {
        available = false;
      }
    }
    return available;
  }

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new SecurityError('ChaCha20-Poly1305 needs a 32-byte key', 'ERR_KEY');
    this.x = instantiate();
    this.mem = memoryOf(this.x, 0);
    this.view = new DataView(this.mem.buffer);
    this.mem.set(key, KEY);
  }

  /** Grow the module memory to `bytes` (views of the old buffer are detached: renew both). */
  private ensure(bytes: number): void {
    if (bytes <= this.mem.length) return;
    this.mem = memoryOf(this.x, bytes);
    this.view = new DataView(this.mem.buffer);
  }

  /** Lay out AAD || pad || body || pad || le64(|AAD|) || le64(|body|) at DATA (RFC 8439 2.8); returns the body's address. */
  private layout(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array): number {
    if (nonce.length !== 12) throw new SecurityError('ChaCha20-Poly1305 needs a 12-byte nonce', 'ERR_AUTH');
    const c = DATA + pad16(aad.length);
    const lens = c + pad16(body.length);
    this.ensure(lens + 16);
    const m = this.mem;
    m.set(nonce, NONCE);
    m.set(aad, DATA);
    m.fill(0, DATA + aad.length, c);
    m.set(body, c);
    m.fill(0, c + body.length, lens);
    const v = this.view;
    v.setUint32(lens, aad.length, true);
    v.setUint32(lens + 4, 0, true);
    v.setUint32(lens + 8, body.length, true);
    v.setUint32(lens + 12, 0, true);
    // The one-time Poly1305 key is the first 32 bytes of block 0 (RFC 8439 2.6).
    this.x.blocks4(0);
    this.x.polyInit(KEYSTREAM);
    return c;
  }

  private mac(c: number, bodyLength: number): void {
    this.x.polyBlocks(DATA, (c + pad16(bodyLength) + 16 - DATA) / 16, FULL_BLOCK);
    this.x.polyFinish(TAG);
  }

  /** Encrypt `body` in place (keystream from block 1) and write the 16-byte tag to `tag`. */
  seal(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): void {
    const c = this.layout(nonce, aad, body);
    this.x.xor(c, body.length, 1);
    this.mac(c, body.length);
    body.set(this.mem.subarray(c, c + body.length));
    tag.set(this.mem.subarray(TAG, TAG + 16));
  }

  /** Check the tag (constant time), then decrypt `body` in place. False: `body` is untouched. */
  open(nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
    if (tag.length !== 16) return false;
    const c = this.layout(nonce, aad, body);
    this.mac(c, body.length);
    const m = this.mem;
    let diff = 0;
    for (let i = 0; i < 16; i++) diff |= (m[TAG + i] as number) ^ (tag[i] as number);
    if (diff !== 0) return false;
    this.x.xor(c, body.length, 1);
    body.set(m.subarray(c, c + body.length));
    return true;
  }

  /** Raw ChaCha20 (RFC 8439 2.4): XOR `data` in place with the keystream from block `counter` (test vectors). */
  xorKeystream(nonce: Uint8Array, counter: number, data: Uint8Array): void {
    this.ensure(DATA + pad16(data.length));
    this.mem.set(nonce, NONCE);
    this.mem.set(data, DATA);
    this.x.xor(DATA, data.length, counter);
    data.set(this.mem.subarray(DATA, DATA + data.length));
  }
}

/** Raw Poly1305 (RFC 8439 2.5) of `msg` under a 32-byte one-time key (test vectors). */
export function poly1305(key: Uint8Array, msg: Uint8Array): Uint8Array {
  if (key.length !== 32) throw new SecurityError('Poly1305 needs a 32-byte key', 'ERR_KEY');
  const x = instantiate();
  const mem = memoryOf(x, DATA + pad16(msg.length) + 16);
  mem.set(key, KEYSTREAM);
  x.polyInit(KEYSTREAM);
  const full = Math.floor(msg.length / 16);
  mem.set(msg, DATA);
  x.polyBlocks(DATA, full, FULL_BLOCK);
  const rest = msg.length - full * 16;
  if (rest > 0) {
    // The last partial block: its bytes, then 0x01, then zeros, without the 2^128 bit.
    const at = DATA + full * 16;
    mem[at + rest] = 1;
    mem.fill(0, at + rest + 1, at + 16);
    x.polyBlocks(at, 1, 0);
  }
  x.polyFinish(TAG);
  return mem.slice(TAG, TAG + 16);
}
