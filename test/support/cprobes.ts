import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/librecast/c in the source tree (this file runs from dist/test/support). */
export const C_DIR = fileURLToPath(new URL('../../../test/librecast/c/', import.meta.url));
/** Our side of the interop tests (dist/test/librecast/lc-node.js). */
export const LC_NODE = fileURLToPath(new URL('../librecast/lc-node.js', import.meta.url));

export type Probes = { ok: true; dir: string; bin: Record<string, string>; cleanup(): void } | { ok: false; reason: string };

/**
 * Compile test/librecast/c/<name>.c against liblibrecast into a fresh temp dir. Returns the reason
 * instead when gcc or Librecast 0.5 (liblibrecast-dev) is missing or a probe does not compile.
 */
export function compileProbes(names: string[]): Probes {
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { ok: false, reason: 'gcc is not installed (apt-get install gcc)' };
  }
  if (!existsSync('/usr/include/librecast/net.h')) {
    return { ok: false, reason: 'Librecast headers are missing (apt-get install liblibrecast-dev)' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lc-'));
  const bin: Record<string, string> = {};
  for (const name of names) {
    const out = join(dir, name);
    const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, join(C_DIR, `${name}.c`), '-llibrecast'], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      return { ok: false, reason: `cannot compile ${name}.c against liblibrecast: ${(r.stderr || '').trim().split('\n').slice(0, 3).join(' / ')}` };
    }
    bin[name] = out;
  }
  return { ok: true, dir, bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
