import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HEAP = fileURLToPath(new URL('../../src/transfer/heap.js', import.meta.url));

/**
 * Runs a workload in a fresh Node whose young-generation objects survive a few scavenges (what
 * makes V8 grow its young generation), with the cap (semi-spaces of `semi` MiB, checked every
 * 1000 allocations of about 100 bytes: about 100 KB of young objects, as between two of the
 * driver's checks every 1024 datagrams) or without; returns the largest young generation seen,
 * MiB, and the cap's own status.
 */
function youngPeak(semi: number | undefined): { mib: number; status: string } {
  const script = `
    const { youngGenerationBytes, youngGenerationCap } = await import(${JSON.stringify(HEAP)});
    const cap = ${semi === undefined ? 'undefined' : `youngGenerationCap(${semi})`};
    let peak = youngGenerationBytes();
    const keep = []; let batch = [];
    for (let i = 0; i < 2e6; i++) {
      batch.push({ i, a: [i] });
      if (batch.length === 1000) {
        keep.push(batch); if (keep.length > 400) keep.shift(); batch = [];
        cap?.check();
        peak = Math.max(peak, youngGenerationBytes());
      }
    }
    console.log(JSON.stringify({ mib: peak / 2 ** 20, status: cap?.status ?? 'off' }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { mib: number; status: string };
}

// V8 11 (Node 20) grows the young generation only by --semi-space-growth-factor, which the cap
// relies on; V8 13 (Node 24) also grows it page by page, and the cap must then say so.
const V8_MAJOR = Number(process.versions.v8.split('.')[0]);

test('youngGenerationCap holds the young generation at its bound from inside the process, or says it did not', () => {
  // Without the cap the same workload grows it well past 4 MiB (V8's bound is 2 x 16 MiB or more).
  const free = youngPeak(undefined);
  assert.ok(free.mib > 8, `${free.mib} MiB without the cap`);
  for (const semi of [2, 1]) {
    const capped = youngPeak(semi);
    const held = capped.mib <= 2 * semi;
    // The status is measured: 'on' exactly when the peak stayed within the cap.
    assert.equal(capped.status === 'on', held, `semi-space ${semi} MiB: peak ${capped.mib} MiB, status ${capped.status}`);
    if (!held) assert.match(capped.status, /^not held: V8 .* past the cap of \d+ MiB/);
    if (V8_MAJOR <= 11) {
      // two semi-spaces of 2 MiB, as node --max-semi-space-size=2; from 1 MiB (Node's start) it never grows
      assert.equal(capped.mib, 2 * semi, `semi-space ${semi} MiB`);
    }
  }
});

/**
 * In a fresh Node, with the arena limit or without: four worker threads allocate (each thread
 * that mallocs gets an arena of its own from glibc unless bounded); returns how many glibc heaps
 * were added, counted in /proc/self/maps as read-write anonymous mappings at a 64 MiB boundary
 * (HEAP_MAX_SIZE, where glibc places each thread arena).
 */
function arenasAdded(limit: boolean): { added: number; result: string } {
  const script = `
    const { readFileSync } = await import('node:fs');
    const { Worker } = await import('node:worker_threads');
    const { limitMallocArenas } = await import(${JSON.stringify(HEAP)});
    const heaps = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => {
      const m = /^([0-9a-f]+)-[0-9a-f]+ rw-p 00000000 00:00 0\\s*$/.exec(l);
      return m !== null && BigInt('0x' + m[1]) % (64n << 20n) === 0n;
    }).length;
    const result = ${limit ? 'limitMallocArenas(1)' : "'not asked'"};
    const before = heaps();
    await Promise.all([1, 2, 3, 4].map(() => new Promise((resolve) => {
      const w = new Worker('const b = []; for (let i = 0; i < 200; i++) b.push(Buffer.alloc(100000 + i)); import("node:worker_threads").then((t) => t.parentPort.postMessage(b.length));', { eval: true });
      w.once('message', () => { resolve(); w.terminate(); });
    })));
    console.log(JSON.stringify({ added: heaps() - before, result }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { added: number; result: string };
}

test('limitMallocArenas bounds glibc to one malloc arena from inside the process', { skip: process.platform !== 'linux' && 'glibc arenas are Linux-only' }, () => {
  const without = arenasAdded(false);
  const limited = arenasAdded(true);
  assert.equal(limited.result, 'on');
  // Without the bound the worker threads' allocations open heaps of their own.
  assert.ok(without.added >= 4, `${without.added} heaps added without the bound`);
  assert.ok(limited.added <= 2, `${limited.added} heaps added with the bound`);
});
