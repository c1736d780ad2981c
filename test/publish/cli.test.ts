// `iotupd publish` argument handling (no network: every case fails before a socket is opened, or
// at the interface check, which only reads this namespace's interface list).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveKeyPair } from '../../src/crypto/keys.js';
import { hierarchy } from '../crypto/fixtures.js';

const MAIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

test('iotupd publish: bad input is one line and a non-zero exit, never a stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-publish-cli-'));
  try {
    saveKeyPair(join(dir, 'signer'), hierarchy().signer);
    const key = join(dir, 'signer.key');
    const cases: [string[], number, RegExp][] = [
      [[], 2, /--interface and --key are required/],
      [['--interface', 'x0', '--key', key], 2, /exactly one of --releases DIR and --config FILE/],
      [['--interface', 'x0', '--key', key, '--releases', dir, '--config', 'c.json'], 2, /exactly one/],
      [['--interface', 'x0', '--key', key, '--releases', dir, '--interval', '0'], 2, /--interval/],
      [['--interface', 'x0', '--key', key, '--releases', dir, '--scope', 'galaxy'], 2, /--scope/],
      [['--interface', 'x0', '--key', join(dir, 'missing.key'), '--releases', dir], 1, /cannot read/],
      [['--interface', 'nosuch0', '--key', key, '--releases', dir], 1, /nosuch0/],
      [['--interface', 'x0', '--key', key, '--releases', dir, 'extra'], 2, /unexpected argument/],
    ];
    for (const [args, status, pattern] of cases) {
      const r = spawnSync(process.execPath, [MAIN, 'publish', ...args], { encoding: 'utf8' });
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
