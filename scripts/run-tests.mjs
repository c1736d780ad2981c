#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner.
// Files run one at a time: lab tests start many processes and the machine has 2 cores.
// Usage: node scripts/run-tests.mjs [substring ...]  (only files whose path contains one)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// Not root: run again inside a rootless user+network namespace (unshare -rnm) so the lab
// tests can build their networks. Where the kernel refuses, this returns and the lab tests
// report themselves skipped with the reason.
if (process.getuid?.() !== 0 && !process.env.IOTUPD_LAB_USERNS) {
  const { reexecInUserns } = await import('../dist/src/lab/support.js');
  reexecInUserns();
}

const filters = process.argv.slice(2);
// Only compiled tests whose source still exists: tsc never deletes outputs, so a test file that
// was moved or removed would otherwise run on from a stale dist/.
const files = walk('dist/test')
  .filter((f) => existsSync(f.replace(/^dist\//, '').replace(/\.js$/, '.ts')))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
// --no-concurrent-recompilation (passed on to each test file's process): Node 20 can deadlock at
// exit when a background TurboFan job waits for a main-thread GC while the main thread waits in
// NodePlatform::DrainTasks for that job (upstream nodejs/node#54918), which hangs a test file
// after all its tests passed; optimizing on the main thread avoids it.
const r = spawnSync(process.execPath, ['--no-concurrent-recompilation', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
