// The fleet dashboard end to end in a real browser: `iotupd dashboard` on a lab host, bound to its
// lab address (so a token is required), reporter processes on other lab hosts, a publisher's STATE
// beacons from another, and the Debian chromium (driven by playwright-core, never a downloaded
// browser) on a "viewer" host of the same lab: all traffic stays inside the lab's namespaces. The
// devices and the publisher change state while the page is open; the page must follow without a
// reload.
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { JsonLines, labTest, type Lab } from '../../src/lab/index.js';
import { makeFleetKeys } from '../../src/lab/fleet.js';
import { generateSigningKey, saveKeyPair } from '../../src/crypto/keys.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import type { DemandCounts } from '../../src/wire/beacon.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(here, '..', '..', '..');
const MAIN = join(here, '..', '..', 'src', 'cli', 'main.js');
const CHILD = join(here, 'reporter-child.js');
const STATE_CHILD = join(here, 'state-child.js');
const CHROMIUM = '/usr/bin/chromium';
const PRODUCT = 'dashsensor';
// A device id and an error a hostile device could send: if the page ever turned them into markup,
// the script would set the global and the image's onerror would set the other.
const EVIL_ID = '<script>window.__pwned=1</script>';
const EVIL_ERROR = '<img src=x onerror="window.__pwnedError=1"> verify: digest mismatch';
// The publisher's reason is signed, but still only text on the page.
const EVIL_REASON = '<img src=x onerror="window.__pwnedReason=1"> none of the 3 devices heard needs it';

function reporter(lab: Lab, host: string, stateDir: string, args: string[]): { child: ChildProcess; out: JsonLines } {
  const h = lab.host(host);
  const child = lab.spawnNode(h, CHILD, ['--interface', h.ifname, '--state-dir', stateDir, '--product', PRODUCT, ...args]);
  return { child, out: new JsonLines(child, { name: host }) };
}

function dashboard(lab: Lab, db: string, registry: string, trust: string): { child: ChildProcess; out: JsonLines } {
  const c = lab.host('collector');
  const child = lab.spawnNode(c, MAIN, ['dashboard', '--product', PRODUCT, '--interface', c.ifname, '--bind', c.address, '--port', '0', '--json', '--db', db, '--registry', registry, '--quiet-after', '4', '--trust', trust]);
  return { child, out: new JsonLines(child, { name: 'dashboard' }) };
}

/** A publisher's STATE beacons from the lab host `publisher` (state-child.ts): `say` sets a release's word. */
function statePublisher(lab: Lab, key: string, strangerKey: string): { child: ChildProcess; out: JsonLines; say: (w: Record<string, unknown>) => void } {
  const h = lab.host('publisher');
  const child = lab.spawnNode(h, STATE_CHILD, ['--interface', h.ifname, '--product', PRODUCT, '--key', key, '--stranger', strangerKey, '--interval-ms', '1000']);
  return { child, out: new JsonLines(child, { name: 'publisher' }), say: (w) => void child.stdin?.write(`${JSON.stringify(w)}\n`) };
}

const demand = (live: number, needing: number, received: number, gaveUp = 0): DemandCounts => ({ live, needing, received, waiting: 0, outside: live - needing - received - gaveUp, gaveUp });

/** The text of a table's body rows, one string per row (cells joined by " | "). */
async function rows(page: Page, table: string): Promise<string[]> {
  return page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '').join(' | ')));
}

/** Poll the page until `pred` holds for the rows of `table` (the page must change by itself). */
async function waitRows(page: Page, table: string, pred: (r: string[]) => boolean, what: string, ms = 20_000): Promise<string[]> {
  const until = Date.now() + ms;
  let last: string[] = [];
  while (Date.now() < until) {
    last = await rows(page, table);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; #${table} has ${JSON.stringify(last)}`);
}

const rowOf = (r: string[], id: string): string | undefined => r.find((x) => x.startsWith(`${id} |`));

labTest('dashboard in a real browser: live rollout, failed, quiet and unknown devices, history, token, Host check on loopback, text-only device data', { hosts: ['collector', 'viewer', 'publisher', 'd1', 'd2', 'd3', 'd4'], timeout: 180_000 }, async (lab, t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is not installed (scripts/setup.sh installs it)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-dash-'));
  let context: BrowserContext | undefined;
  try {
    const registry = join(dir, 'registry.txt');
    const db = join(dir, 'fleet.db');
    for (const d of ['d1', 'd2', 'd3']) {
      const id = DeviceIdentity.open(join(dir, d));
      const r = spawnSync(process.execPath, [MAIN, 'fleet', 'enrol', '--registry', registry, '--device-id', `dev-${d}`, '--key', id.publicKeyFile], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    // The publisher's root, as the devices pin it, is the dashboard's --trust; the beacons are
    // signed by a key it delegated. A stranger's key chains to nothing pinned.
    const keys = makeFleetKeys(dir, PRODUCT);
    const strangerKey = saveKeyPair(join(dir, 'stranger'), generateSigningKey()).keyFile;
    const dash = dashboard(lab, db, registry, keys.rootPub);
    const listening = await dash.out.waitFor((o) => o.type === 'listening', 15_000);
    // Bound to the lab address without --token: one was generated and printed.
    assert.equal(listening.generatedToken, true);
    const token = String(listening.token);
    assert.match(token, /^[A-Za-z0-9_-]{32}$/);
    const url = String(listening.url);
    const base = url.slice(0, url.indexOf('?'));
    assert.equal(base, `http://[${lab.host('collector').address}]:${String(listening.port)}/`);

    // A rollout of release #2 (2.0.0): d1 downloading, d2 installing, d3 not started; d4 is not enrolled.
    const devs = {
      d1: reporter(lab, 'd1', join(dir, 'd1'), ['--device-id', 'dev-d1', '--state', 'receiving', '--version', '1.0.0', '--pending-version', '2.0.0', '--pending-sequence', '2', '--progress', '0.4', '--then', 'installed', '--then-version', '2.0.0', '--then-sequence', '2', '--after-ms', 'stdin']),
      d2: reporter(lab, 'd2', join(dir, 'd2'), ['--device-id', 'dev-d2', '--state', 'installing', '--version', '1.0.0', '--pending-version', '2.0.0', '--pending-sequence', '2', '--then', 'failed', '--then-sequence', '1', '--then-keep-pending', '--then-error', EVIL_ERROR, '--after-ms', 'stdin']),
      d3: reporter(lab, 'd3', join(dir, 'd3'), ['--device-id', 'dev-d3', '--state', 'idle', '--version', '1.0.0']),
      d4: reporter(lab, 'd4', join(dir, 'd4'), ['--device-id', EVIL_ID, '--state', 'idle', '--version', '6.6.6']),
    };
    for (const d of Object.values(devs)) await d.out.waitFor((o) => o.event === 'ready', 15_000);

    // The browser runs in the viewer host's namespace: a wrapper enters it, then execs chromium.
    const wrapper = join(dir, 'chromium-in-lab.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.host('viewer').netns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: wrapper,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 1100 },
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    // Off loopback, every request needs the token: none is 401, a wrong one 403, for the page and the API.
    assert.equal((await page.goto(base))?.status(), 401);
    assert.equal((await page.goto(`${base}api/snapshot`))?.status(), 401);
    assert.equal((await page.goto(`${base}api/history?device=dev-d1`))?.status(), 401);
    assert.equal((await page.goto(`${base}?token=${'x'.repeat(token.length)}`))?.status(), 403);
    assert.equal((await page.goto(`${base}app.js`))?.status(), 401);
    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    assert.match((await res?.allHeaders())?.['content-security-policy'] ?? '', /script-src 'self'/);

    // Before the change: both in progress for release #2, d3 not yet, versions 1.0.0 x3.
    await page.waitForSelector('#conn.live', { timeout: 15_000 });
    let r = await waitRows(page, 'devices', (x) => /receiving/.test(rowOf(x, 'dev-d1') ?? '') && /installing/.test(rowOf(x, 'dev-d2') ?? '') && rowOf(x, 'dev-d3') !== undefined, 'd1 receiving, d2 installing');
    assert.equal(r.length, 3, 'three trusted devices');
    assert.match(rowOf(r, 'dev-d1') ?? '', /\| 40 \|/, 'd1 progress 40 %');
    let rollout = await waitRows(page, 'rollout', (x) => x.some((y) => y.startsWith('2.0.0 (#2) | 0 | 2 | 0 | 1 |')), 'release #2: 0 installed, 2 in progress, 0 failed, 1 not yet');
    assert.ok(rollout.some((y) => y.startsWith('1.0.0 (#1) | 3 |')), JSON.stringify(rollout));
    assert.deepEqual(await rows(page, 'versions'), ['1.0.0 | 3']);
    // The unknown device: listed apart, its id shown as text, not counted among trusted devices.
    const unknown = await waitRows(page, 'unknown', (x) => x.some((y) => y.startsWith(`${EVIL_ID} |`)), 'the unknown device');
    assert.equal(unknown.length, 1);
    assert.ok(!r.some((y) => y.includes('__pwned')), 'unknown device among trusted ones');
    assert.match((await page.textContent('#summary')) ?? '', /^3 trusted devices: 3 ok, 0 failed, 0 quiet; 1 unknown/);

    // The publisher's word, from STATE beacons: release #2 paused (its reason shown as text, the
    // row marked), #3 announced with no device reporting it yet (a row of its own).
    const pub = statePublisher(lab, keys.signerKey, strangerKey);
    await pub.out.waitFor((o) => o.event === 'ready', 15_000);
    const relRow = (x: string[], name: string): string => x.find((y) => y.startsWith(`${name} |`)) ?? '';
    pub.say({ sequence: '2', version: '2.0.0', state: 'paused', reason: EVIL_REASON, demand: demand(3, 0, 0) });
    pub.say({ sequence: '3', version: '3.0.0', state: 'serving', reason: 'announced: 3 of 3 devices heard need it', demand: demand(3, 3, 0) });
    rollout = await waitRows(page, 'rollout', (x) => relRow(x, '2.0.0 (#2)').includes(`paused: ${EVIL_REASON}`) && /serving: announced/.test(relRow(x, '3.0.0 (#3)')), 'release #2 paused, #3 serving');
    assert.match(relRow(rollout, '2.0.0 (#2)'), /^2\.0\.0 \(#2\) \| 0 \| 2 \| 0 \| 1 \|/, 'the devices\' counts are unchanged');
    assert.match(relRow(rollout, '2.0.0 (#2)'), /3 live: 0 need it, 0 have it, 0 waiting, 3 outside the rollout, 0 gave up/);
    assert.match(relRow(rollout, '3.0.0 (#3)'), /^3\.0\.0 \(#3\) \| 0 \| 0 \| 0 \| 3 \| 0 \|/, 'a release only the publisher names');
    assert.equal(await page.locator('#rollout tr.release-paused[data-sequence="2"]').count(), 1, 'the paused row is marked');
    assert.equal(await page.locator('#rollout tr.release-paused').count(), 1);
    assert.equal(await page.locator('#rollout img').count(), 0, 'the reason never became markup');
    // A STATE beacon signed by a stranger is dropped and counted; the page never shows it.
    pub.say({ stranger: true, sequence: '2', version: '2.0.0', state: 'serving', reason: 'STRANGER says serve', demand: demand(3, 3, 0) });
    await pub.out.waitFor((o) => o.event === 'sent' && o.stranger === true, 15_000);
    const until = Date.now() + 20_000;
    while (!/publisher [1-9]/.test((await page.textContent('#drops')) ?? '') && Date.now() < until) await new Promise((res) => setTimeout(res, 200));
    assert.match((await page.textContent('#drops')) ?? '', /publisher [1-9]/, 'the stranger\'s beacon is counted as a publisher drop');
    await new Promise((res) => setTimeout(res, 1500)); // a few more snapshots
    assert.ok(!((await page.textContent('body')) ?? '').includes('STRANGER'), 'the stranger\'s word is never shown');
    assert.equal(await page.locator('#rollout tr.release-paused[data-sequence="2"]').count(), 1, 'still paused');
    // The publisher resumes #2: the row follows.
    pub.say({ sequence: '2', version: '2.0.0', state: 'serving', reason: '2 of 3 devices heard need it', demand: demand(3, 2, 0) });
    rollout = await waitRows(page, 'rollout', (x) => relRow(x, '2.0.0 (#2)').includes('serving: 2 of 3 devices heard need it'), 'release #2 serving again');
    assert.equal(await page.locator('#rollout tr.release-paused').count(), 0, 'no row marked paused');

    // Live: a marker on the page survives only if the page is never reloaded.
    await page.evaluate(() => {
      (globalThis as unknown as Record<string, unknown>).__sameDocument = true;
    });
    devs.d1.child.stdin?.write('go\n');
    devs.d2.child.stdin?.write('go\n');
    devs.d3.child.kill('SIGTERM');
    r = await waitRows(page, 'devices', (x) => /\| ok \| installed \|/.test(rowOf(x, 'dev-d1') ?? '') && /2\.0\.0 \(#2\)/.test(rowOf(x, 'dev-d1') ?? ''), 'd1 installed 2.0.0');
    const failed = await waitRows(page, 'failed', (x) => rowOf(x, 'dev-d2') !== undefined, 'd2 failed');
    assert.match(rowOf(failed, 'dev-d2') ?? '', /\| failed \|/);
    assert.ok((rowOf(failed, 'dev-d2') ?? '').includes(EVIL_ERROR), 'the error is shown verbatim, as text');
    const quiet = await waitRows(page, 'quiet', (x) => rowOf(x, 'dev-d3') !== undefined, 'd3 quiet', 30_000);
    assert.match(rowOf(quiet, 'dev-d3') ?? '', /\| idle \|/);
    assert.equal(rowOf(await rows(page, 'failed'), 'dev-d3'), undefined, 'a quiet device is not listed as failed');
    rollout = await waitRows(page, 'rollout', (x) => x.some((y) => y.startsWith('2.0.0 (#2) | 1 | 0 | 1 | 1 | 1 |')), 'release #2: 1 installed, 1 failed, 1 not yet (quiet)');
    // Nobody heard needs #2 any more: the publisher pauses it (the page's screenshot shows it so).
    pub.say({ sequence: '2', version: '2.0.0', state: 'paused', reason: 'none of the 2 devices heard needs it (1 have it, 1 gave up)', demand: demand(2, 0, 1, 1) });
    rollout = await waitRows(page, 'rollout', (x) => relRow(x, '2.0.0 (#2)').includes('paused: none of the 2 devices heard needs it'), 'release #2 paused again');
    assert.equal(await page.locator('#rollout tr.release-paused[data-sequence="2"]').count(), 1);
    assert.deepEqual((await rows(page, 'versions')).sort(), ['1.0.0 | 2', '2.0.0 | 1']);
    assert.equal(await page.evaluate(() => (globalThis as unknown as Record<string, unknown>).__sameDocument), true, 'updated without a reload');

    // One device's history, from the database: click its row.
    await page.click('#devices tr[data-device="dev-d1"]');
    const history = await waitRows(page, 'history', (x) => x.some((y) => y.includes('| installed |')) && x.some((y) => y.includes('| receiving |')), 'dev-d1 history');
    assert.ok(history.length >= 2, JSON.stringify(history));
    assert.equal(await page.textContent('#history-device'), 'dev-d1');
    // Newest first: installed, then receiving.
    assert.ok(history.findIndex((y) => y.includes('| installed |')) < history.findIndex((y) => y.includes('| receiving |')));

    // Device data never ran: neither global was set, and no script error happened.
    const globals = await page.evaluate(() => [(globalThis as unknown as Record<string, unknown>).__pwned, (globalThis as unknown as Record<string, unknown>).__pwnedError, (globalThis as unknown as Record<string, unknown>).__pwnedReason]);
    assert.deepEqual(globals, [undefined, undefined, undefined]);
    assert.equal(await page.locator('#unknown script, #failed img, #devices img, #rollout img').count(), 0);
    assert.deepEqual(pageErrors, []);

    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard.png'), fullPage: true });

    // A restarted dashboard shows the database's state at once, with every reporter stopped.
    for (const d of Object.values(devs)) d.child.kill('SIGTERM');
    pub.child.kill('SIGTERM');
    dash.child.kill('SIGTERM');
    const ended = await dash.out.exited;
    assert.equal(ended.code, 0, ended.stderr);
    const again = dashboard(lab, db, registry, keys.rootPub);
    const l2 = await again.out.waitFor((o) => o.type === 'listening', 15_000);
    await page.goto(String(l2.url));
    r = await waitRows(page, 'devices', (x) => x.length === 3 && x.every((y) => y.startsWith('dev-')), 'the devices from the database');
    assert.match(rowOf(r, 'dev-d1') ?? '', /installed \| {2}\| 2\.0\.0 \(#2\)/);
    assert.match(rowOf(r, 'dev-d2') ?? '', /\| failed \|/);
    assert.ok((await rows(page, 'unknown')).some((y) => y.startsWith(`${EVIL_ID} |`)));
    assert.deepEqual((await rows(page, 'versions')).sort(), ['1.0.0 | 2', '2.0.0 | 1']);
    // The publisher's last word comes back from the database too: paused, or unknown once quiet.
    rollout = await waitRows(page, 'rollout', (x) => /\| (paused|unknown)\b/.test(relRow(x, '2.0.0 (#2)')) && relRow(x, '3.0.0 (#3)') !== '', 'the releases from the database');
    assert.match(relRow(rollout, '2.0.0 (#2)'), /none of the 2 devices heard needs it/);
    again.child.kill('SIGTERM');
    assert.equal((await again.out.exited).code, 0);

    // On loopback (the default) no token is needed, but the Host must name this machine: a page
    // elsewhere reaching it through DNS rebinding is refused. Inside the collector's namespace.
    const c = lab.host('collector');
    const local = lab.spawnNode(c, MAIN, ['dashboard', '--product', PRODUCT, '--db', db, '--port', '0', '--json']);
    const localOut = new JsonLines(local, { name: 'dashboard-local' });
    const l3 = await localOut.waitFor((o) => o.type === 'listening', 15_000);
    assert.equal(l3.token, null);
    assert.match(String(l3.url), /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const probe = `const http = require('node:http');
      const get = (host) => new Promise((ok, bad) => http.get({ host: '127.0.0.1', port: ${String(l3.port)}, path: '/api/snapshot', headers: host ? { host } : {} }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => ok([r.statusCode, b.length])); }).on('error', bad));
      Promise.all([get(undefined), get('rebound.example:${String(l3.port)}')]).then((x) => console.log(JSON.stringify(x)));`;
    const res2 = await lab.exec(c, process.execPath, ['-e', probe]);
    const [plain, rebound] = JSON.parse(res2.stdout) as [number, number][];
    assert.equal(plain?.[0], 200);
    assert.ok((plain?.[1] ?? 0) > 100, 'a snapshot');
    assert.equal(rebound?.[0], 403);
    local.kill('SIGTERM');
    assert.equal((await localOut.exited).code, 0);
  } finally {
    await context?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
