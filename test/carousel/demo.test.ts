// `iotupd demo` end to end (what `npm run demo` runs: the fleet story) and `iotupd demo transfer`,
// with small files to keep them short.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { labNamespaces, labSupport } from '../../src/lab/index.js';
import { MAIN } from './cli.js';

const support = labSupport();
test('iotupd demo: the fleet story: two devices update, one rolls back, two skip, with the summary table; the lab is removed', support.ok ? { timeout: 120_000 } : { skip: `network lab unavailable: ${support.reason}` }, async () => {
  const child = spawn(process.execPath, [MAIN, 'demo', '--size', '0.5', '--dashboard-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // The dashboard the demo serves on loopback, read while the demo runs: the whole fleet and the
  // paused release reach it from the database the lab's collector writes.
  let seen: { trusted: number; paused: boolean } = { trusted: 0, paused: false };
  let polling: Promise<void> | undefined;
  const poll = async (url: string): Promise<void> => {
    for (let i = 0; i < 200 && !(seen.trusted === 5 && seen.paused); i++) {
      try {
        const snap = (await (await fetch(new URL('/api/snapshot', url))).json()) as { summary: { trusted: number }; releases: { state: string }[] };
        seen = { trusted: snap.summary.trusted, paused: snap.releases.some((r) => r.state === 'paused') };
      } catch {
        break; // the demo ended and closed its dashboard
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const url = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out)?.[1];
    if (url && !polling) polling = poll(url);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(code, 0, out);
  await polling;
  assert.deepEqual(seen, { trusted: 5, paused: true }, 'the dashboard showed the five devices and the paused release');
  // Each device's path through the states is shown.
  assert.match(out, /lossy +state download 2\.0/);
  assert.match(out, /sick +state health-check 2\.0/);
  assert.match(out, /sick +ROLLED BACK 2\.0: .*self-test failed/);
  assert.match(out, /late +powered on late/);
  // The summary table: one row per device, with the result and why.
  const table = out.slice(out.indexOf('summary:'));
  assert.match(table, /device +link +class +result +running +why/);
  assert.match(table, /lossy +10 % loss +thermostat +updated +2\.0/);
  assert.match(table, /late +joins late +thermostat +updated +2\.0/);
  assert.match(table, /sick +clean +thermostat +rolled back +none +.*self-test failed/);
  assert.match(table, /outside +clean +thermostat +skipped +none +not-in-rollout: /);
  assert.match(table, /gateway +clean +gateway +skipped +none +device-class: /);
  assert.match(out, /fleet as expected: 2 updated, 1 rolled back, 2 skipped/);
  // The operator's live table ('iotupd status' in the lab), from the devices' signed reports.
  const status = out.slice(out.indexOf(`fleet status ('iotupd status'`), out.indexOf('summary:'));
  assert.match(status, /product thermostat: 5 trusted \(ok 4, failed 1, quiet 0\), 0 unknown/);
  assert.match(status, /versions: .*2\.0 x2/);
  assert.match(status, /thermo-\d+ +rolled-back +2\.0 +\d+s +ERR_HEALTH: health check exited 1: sensor self-test failed/);
  assert.equal((status.match(/thermo-\d+ +installed +2\.0 /g) ?? []).length, 2, status);
  // The publisher hears the same reports and stops sending what nobody needs.
  assert.match(out, /publisher PAUSED 2\.0: none of the 5 devices heard needs it \(2 have it, 2 outside the rollout, 1 gave up\)/);
  assert.match(status, /#2 +2\.0 +paused +none of the 5 devices heard needs it/, 'the collector verified the publisher\'s STATE beacon');
  const id = /lab (iu[a-z0-9]+) removed/.exec(out)?.[1];
  assert.ok(id, 'the demo says it removed its lab');
  assert.deepEqual(labNamespaces().filter((n) => n.startsWith(id)), [], `namespaces of ${id} left behind`);
});

test('iotupd demo transfer: three devices (10 % loss, late join) all verify, and the lab is removed', support.ok ? { timeout: 120_000 } : { skip: `network lab unavailable: ${support.reason}` }, async () => {
  const child = spawn(process.execPath, [MAIN, 'demo', 'transfer', '--size', '1', '--rate', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const child = spawn(process.execPath, [MAIN, 'demo', 'transfer', '--format', 'iotupd', '--rate', '2'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
