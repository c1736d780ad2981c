import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** test/fixtures/ of the repository (tsc copies no JSON into dist/, so read the source tree). */
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');

/**
 * A JSON fixture from test/fixtures/ (test/fixtures/README.md says where each comes from). A
 * missing or unreadable file throws with its path: the known-answer tests must not pass by
 * reading nothing.
 */
export function readFixture<T>(name: string): T {
  const path = join(FIXTURES_DIR, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`fixture ${path} not readable (${(err as Error).message}); it is part of the repository`);
  }
  return JSON.parse(text) as T;
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
