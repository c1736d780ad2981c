import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HEAP = fileURLToPath(new URL('../../src/transfer/heap.js', import.meta.url));

/**
 * Runs a workload in a fresh Node whose young-generation objects survive a few scavenges (what
 * makes V8 grow its young generation), with the cap (semi-spaces of `semi` MiB, checked every
 * 1000 allocations of about 100 bytes, as the driver checks every 64 datagrams) or without;
 * returns the largest young generation seen, MiB.
 */
function youngPeakMiB(semi: number | undefined): number {
  const script = `
    const { youngGenerationBytes, youngGenerationCap } = await import(${JSON.stringify(HEAP)});
    const check = ${semi === undefined ? '() => {}' : `youngGenerationCap(${semi}).check`};
    let peak = youngGenerationBytes();
    const keep = []; let batch = [];
    for (let i = 0; i < 2e6; i++) {
      batch.push({ i, a: [i] });
      if (batch.length === 1000) {
        keep.push(batch); if (keep.length > 400) keep.shift(); batch = [];
        check();
        peak = Math.max(peak, youngGenerationBytes());
      }
    }
    console.log(peak / 2 ** 20);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('youngGenerationCap holds the young generation at its bound from inside the process', () => {
  // Without the cap the same workload grows it well past 4 MiB (V8's bound is 2 x 16 MiB).
  assert.ok(youngPeakMiB(undefined) > 8);
  assert.equal(youngPeakMiB(2), 4); // two semi-spaces of 2 MiB, as node --max-semi-space-size=2
  assert.equal(youngPeakMiB(1), 2); // Node starts at 1 MiB: it never grows
});
