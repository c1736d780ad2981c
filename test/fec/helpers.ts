import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/reference relative to the repository root (dist/test/fec/ -> repo root is ../../..). */
export const REFERENCE_DIR = fileURLToPath(new URL('../../../../shared/reference/', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function readReference<T>(name: string): T {
  return JSON.parse(readFileSync(REFERENCE_DIR + name, 'utf8')) as T;
}

export { prng } from '../support/prng.js';

export function randomBytes(n: number, rnd: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rnd() * 256) | 0;
  return out;
}

/** Source data of the KAT file: byte i = ((i * 2654435761) mod 2^32) >> 24. */
export function katData(f: number): Uint8Array {
  const out = new Uint8Array(f);
  for (let i = 0; i < f; i++) out[i] = Math.imul(i, 2654435761) >>> 24;
  return out;
}
