// The key and manifest commands, run as a user would (compiled CLI, child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytesSeeded } from './fixtures.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function cli(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('keygen root / delegated / group; manifest sign and inspect as a device would judge it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-cli-'));
  try {
    assert.equal(cli(dir, 'keygen', '--out', 'root').code, 0);
    const d = cli(dir, 'keygen', '--out', 'signer', '--root', 'root.key', '--product', 'sensor-v2', '--expires', '+10d', '--max-sequence', '50');
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /delegated by root [0-9a-f]{16} for sensor-v2/);
    assert.equal(cli(dir, 'keygen', '--group', 'group.key').code, 0);
    for (const f of ['root.key', 'signer.key', 'group.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    // User mistakes: one line, exit 2 (usage) or 1, no stack trace.
    const again = cli(dir, 'keygen', '--out', 'root');
    assert.equal(again.code, 2);
    assert.match(again.err, /^iotupd: .*already exists/);
    assert.equal(cli(dir, 'keygen', '--out', 'x', '--root', 'root.key').code, 2);
    writeFileSync(join(dir, 'fw.bin'), randomBytesSeeded(100_000, 4));
    const s = cli(dir, 'manifest', 'sign', 'fw.bin', '--key', 'signer.key', '--product', 'sensor-v2', '--sequence', '7', '--out', 'fw.manifest', '--group-key', 'group.key', '--encrypt', '--digests');
    assert.equal(s.code, 0, s.err);
    const ok = cli(dir, 'manifest', 'inspect', 'fw.manifest', '--trust', 'root.pub', '--installed', '6', '--json');
    assert.equal(ok.code, 0, ok.err);
    const j = JSON.parse(ok.out) as Record<string, unknown>;
    assert.match(String(j.verdict), /^VALID/);
    assert.match(String(j.encryption), /^chacha20-poly1305 group key [0-9a-f]{16}$/);
    assert.equal(j.symbolDigests, true);
    const roll = cli(dir, 'manifest', 'inspect', 'fw.manifest', '--trust', 'root.pub', '--installed', '7');
    assert.equal(roll.code, 1);
    assert.match(roll.out, /REFUSED ERR_ROLLBACK/);
    const wrong = cli(dir, 'manifest', 'inspect', 'fw.manifest', '--trust', 'signer.pub', '--product', 'gateway');
    assert.equal(wrong.code, 1);
    assert.match(wrong.out, /REFUSED ERR_(DELEGATION|WRONG_PRODUCT)/);
    const ff = cli(dir, 'manifest', 'sign', 'fw.bin', '--key', 'signer.key', '--product', 'sensor-v2', '--sequence', '51', '--out', 'ff.manifest');
    assert.equal(ff.code, 0);
    assert.match(cli(dir, 'manifest', 'inspect', 'ff.manifest', '--trust', 'root.pub').out, /REFUSED ERR_DELEGATION: sequence 51 outside the delegated range 1..50/);
    const stranger = cli(dir, 'manifest', 'inspect', 'fw.manifest', '--trust', 'root.pub', '--trust', 'signer.pub');
    assert.equal(stranger.code, 0, 'several pinned keys');
    // Security options of send / recv: wrong values and missing keys are one-line usage errors.
    for (const args of [
      ['send', 'fw.bin', '--channel', 'c', '--interface', 'lo', '--key', 'signer.key', '--product', 'p', '--sequence', '1', '--group-key', 'group.key', '--mac', 'md5'],
      ['send', 'fw.bin', '--channel', 'c', '--interface', 'lo', '--group-key', 'group.key', '--mac', 'hmac'],
      ['recv', 'out.bin', '--channel', 'c', '--interface', 'lo', '--mac', 'hmac'],
      ['recv', 'out.bin', '--channel', 'c', '--interface', 'lo', '--trust', 'root.pub', '--product', 'p', '--state', 'st', '--group-key', 'group.key', '--cipher', 'des'],
    ]) {
      const r = cli(dir, ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /^iotupd: .*(--mac|--cipher|need)/);
      assert.equal(r.err.trim().split('\n').length, 1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
