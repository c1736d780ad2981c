// Loads the npm `raptorq` 1.7.24 package (wasm-bindgen "web" target: ESM without "type": "module",
// so Node cannot import it by name). Its glue is copied to a temporary .mjs file, imported, and
// initialised synchronously with the package's own raptorq_bg.wasm. Used as a second oracle and
// as a benchmark peer. Note (docs/raptorq.md, "RFC ambiguities and decisions"): it numbers repair
// symbols differently from RFC 6330 when K' > K, so comparisons are made only where K = K'.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './helpers.js';

export interface NpmEncoder {
  encode(repairPacketsPerBlock: number): Uint8Array[];
  free(): void;
}
export interface NpmDecoder {
  decode(packet: Uint8Array): Uint8Array | undefined;
  free(): void;
}
export interface NpmRaptorq {
  Encoder: { with_defaults(data: Uint8Array, mtu: number): NpmEncoder };
  Decoder: { with_defaults(transferLength: bigint, mtu: number): NpmDecoder };
}

export async function loadNpmRaptorq(): Promise<NpmRaptorq | undefined> {
  const dir = join(REPO_ROOT, 'node_modules/raptorq');
  if (!existsSync(join(dir, 'raptorq.js'))) return undefined;
  const tmp = mkdtempSync(join(tmpdir(), 'iotupd-npm-raptorq-'));
  try {
    copyFileSync(join(dir, 'raptorq.js'), join(tmp, 'raptorq.mjs'));
    const mod = (await import(pathToFileURL(join(tmp, 'raptorq.mjs')).href)) as NpmRaptorq & { initSync(module: object): void };
    const WA = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object } }).WebAssembly;
    mod.initSync(new WA.Module(readFileSync(join(dir, 'raptorq_bg.wasm'))));
    return mod;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
