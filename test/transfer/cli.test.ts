// iotupd recv (fountain format): bad decoder options are usage errors, one line, exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('iotupd recv: --decoder must be auto, worker or inline, and --low-memory cannot take a worker', () => {
  const base = ['recv', '/nonexistent/out.bin', '--channel', 'c', '--interface', 'lo'];
  for (const [extra, why] of [
    [['--decoder', 'gpu'], /--decoder must be auto, worker or inline/],
    [['--decoder', 'worker', '--low-memory'], /--low-memory decodes inline/],
  ] as const) {
    const r = spawnSync(process.execPath, [MAIN, ...base, ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, why);
  }
});
