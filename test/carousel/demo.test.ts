// `iotupd demo` end to end (what `npm run demo` runs), with a small file to keep it short.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { labNamespaces, labSupport } from '../../src/lab/index.js';
import { MAIN } from './cli.js';

const support = labSupport();
test('iotupd demo: three devices (10 % loss, late join) all verify, and the lab is removed', support.ok ? { timeout: 120_000 } : { skip: `network lab unavailable: ${support.reason}` }, async () => {
  const child = spawn(process.execPath, [MAIN, 'demo', '--size', '1', '--rate', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(code, 0, out);
  assert.match(out, /dev1 \(clean link\): ok /);
  assert.match(out, /dev2 \(10 % loss\): ok /);
  assert.match(out, /dev3 \(joins late\): ok /);
  assert.match(out, /all 3 copies verified/);
  const id = /lab (iu[a-z0-9]+) removed/.exec(out)?.[1];
  assert.ok(id, 'the demo says it removed its lab');
  assert.deepEqual(labNamespaces().filter((n) => n.startsWith(id)), [], `namespaces of ${id} left behind`);
});

test('iotupd demo interrupted (Ctrl-C to its process group) exits 130, removes its lab, leaves no process', support.ok ? { timeout: 60_000 } : { skip: `network lab unavailable: ${support.reason}` }, async () => {
  // Regression: the wait for the late device must not keep the process alive after an interrupt.
  const child = spawn(process.execPath, [MAIN, 'demo', '--format', 'iotupd', '--rate', '2'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const built = new Promise<string>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /lab (iu[a-z0-9]+): /.exec(out);
      if (m && /t=/.test(out)) resolve(m[1]!);
    });
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  const id = await built;
  process.kill(-child.pid!, 'SIGINT'); // what a terminal does on Ctrl-C
  assert.equal(await closed, 130, out);
  assert.match(out, /interrupted/);
  assert.deepEqual(labNamespaces().filter((n) => n.startsWith(id)), [], `namespaces of ${id} left behind`);
});
