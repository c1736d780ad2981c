import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function iotupd(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'channel', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('iotupd channel prints the group (known answers)', () => {
  assert.deepEqual(iotupd('example.com'), { code: 0, stdout: 'ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf\n', stderr: '' });
  assert.equal(iotupd('').stdout, 'ff1e:d03b:f86b:935f:a34d:71ad:7ebb:49f\n');
  assert.equal(iotupd('example.com', '--scheme', 'sha3').stdout, 'ff1e:873e:378f:f6a5:a1f6:fa49:95f1:faf\n');
  assert.equal(iotupd('example.com', '--scope', 'site').stdout, 'ff15:740d:6e6f:efbd:2c22:da0f:9126:91bf\n');
  assert.equal(iotupd('example.com', '--sideband', '0x0102030405060708').stdout, 'ff1e:740d:6e6f:efbd:807:605:403:201\n');
  assert.match(iotupd('example.com', '--ssm').stdout, /^ff3e::[89a-f][0-9a-f]{3}:[0-9a-f]{1,4}\n$/);
  const j = JSON.parse(iotupd('wibble', '--json', '--port', '5000', '--scope', 'org').stdout) as Record<string, unknown>;
  assert.deepEqual(j, { name: 'wibble', scheme: 'librecast', scope: 'org', ssm: false, group: 'ff18:4343:d014:74be:efca:942a:9024:7b49', port: 5000 });
});

test('iotupd channel: bad options give one line on stderr and exit 2', () => {
  const bad: string[][] = [[], ['a', 'b'], ['x', '--scheme', 'md5'], ['x', '--scope', 'moon'], ['x', '--port', '0'], ['x', '--port', '65536'],
    ['x', '--port', '12ab'], ['x', '--sideband', '18446744073709551616'], ['x', '--sideband', '1.5'], ['x', '--bogus']];
  for (const args of bad) {
    const r = iotupd(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^iotupd: /);
  }
});
