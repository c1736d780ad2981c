// The agent's failure cases, each in real child processes (the compiled CLI) on a device
// directory: a full disk, an image changed between download and switch, a hanging health check,
// failing hooks, a changed config after a crash, the loop guard, config mistakes; and the
// library's events and release policy in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { BundleSource } from '../../src/agent/source.js';
import type { Phase } from '../../src/agent/state.js';
import { UsageError } from '../../src/errors.js';
import { activeHash, agentState, cli, configFor, installArgs, installedSequence, MAIN, makeDevice, makeRelease, NOW, sha256hex, signRelease, type Device, type Method } from './helpers.js';

function withDevice(method: Method, cfg: Record<string, unknown> | undefined, fn: (d: Device) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), `iotupd-agent-${method}-`));
    try {
      const d = makeDevice(dir, method, cfg ?? configFor(method));
      const r = await cli(d, installArgs(d, d.v1));
      assert.equal(r.code, 0, r.out + r.err);
      assert.equal(activeHash(d), d.v1.hash);
      await fn(d);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function setConfig(d: Device, cfg: Record<string, unknown>): void {
  writeFileSync(d.config, JSON.stringify(cfg));
}

/** Index (1-based) of the first step named `name` in a clean run of `img`, counted on a copy. */
async function stepIndex(d: Device, args: string[], name: string): Promise<number> {
  const copy = mkdtempSync(join(tmpdir(), 'iotupd-count-'));
  try {
    spawnSync('cp', ['-a', `${d.dir}/.`, copy]);
    const file = join(copy, 'steps.txt');
    const r = await cli({ dir: copy }, args.map((a) => a.split(d.dir).join(copy)), { IOTUPD_AGENT_FAULT: `count:${file}` });
    assert.equal(r.signal, null);
    const steps = readFileSync(file, 'utf8').trim().split('\n');
    const i = steps.indexOf(name);
    assert.ok(i >= 0, `step ${name} in ${steps.join(' ')}`);
    return i + 1;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

/** Alive and not a zombie (an orphan's zombie waits for init, which may not reap it here). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

test(
  'disk full during install: the install fails with ERR_STORAGE_FULL, the old version stays whole, nothing is left behind',
  { skip: canMount ? false : 'needs root and unshare -m for a private tmpfs' },
  withDevice('file', undefined, async (d) => {
    const big = makeRelease(join(d.dir, 'rel'), 'v2big', 2n, {}, 200 * 1024);
    // A 160 KiB tmpfs, private to this mount namespace, holds the target: v1 (64 KiB) fits, v2big does not.
    const sh = `set -e; cp app/firmware.bin v1.copy; mount -t tmpfs -o size=160k tmpfs app; cp v1.copy app/firmware.bin
"${process.execPath}" "${MAIN}" agent install --config agent.json --manifest "${big.manifestFile}" --image "${big.imageFile}" || echo "exit $?"
sha256sum app/firmware.bin; ls -a app`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh], { cwd: d.dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /failed v2big: cannot write .*firmware\.bin\.iotupd-new: no space left on the device/);
    assert.match(r.stdout, /exit 1/);
    assert.ok(r.stdout.includes(`${d.v1.hash}  app/firmware.bin`), 'v1 intact on the full file system');
    const listing = r.stdout.trim().split('\n').slice(-3);
    assert.deepEqual(listing, ['.', '..', 'firmware.bin'], 'no partial or temporary file left');
    const s = agentState(d);
    assert.equal(s?.phase, 'idle');
    assert.equal(s?.last?.result, 'failed');
    assert.equal(s?.last?.code, 'ERR_STORAGE_FULL');
    assert.equal(s?.attempts[big.manifestId], 1);
    assert.equal(installedSequence(d), 1n);
    assert.deepEqual(readdirSync(join(d.stateDir, 'releases')), []);
  }),
);

test(
  'image changed on disk between install and switch: the re-verification refuses it, the old version stays',
  withDevice('file', undefined, async (d) => {
    const args = installArgs(d, d.v2);
    const at = await stepIndex(d, args, 'file:keep-previous');
    const killed = await cli(d, args, { IOTUPD_AGENT_FAULT: `kill:${at}` });
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(agentState(d)?.phase, 'switch');
    // Someone (or a failing flash) changes the written copy while the agent is down.
    appendFileSync(join(d.dir, 'app/firmware.bin.iotupd-new'), 'X');
    const r = await cli(d, ['agent', 'resume', '--config', d.config]);
    assert.equal(r.code, 1);
    assert.match(r.out, /rolled back v2: .*does not match the signed manifest/);
    assert.equal(activeHash(d), d.v1.hash);
    assert.equal(installedSequence(d), 1n);
    const s = agentState(d);
    assert.equal(s?.last?.code, 'ERR_IMAGE_CHANGED');
    // A local fault, not a bad release: counted as an attempt, and the release may come again.
    assert.ok(!s?.failed.includes(d.v2.manifestId));
    assert.equal(s?.attempts[d.v2.manifestId], 1);
    const again = await cli(d, args);
    assert.equal(again.code, 0, again.out);
    assert.equal(activeHash(d), d.v2.hash);
  }),
);

test(
  'hook method: an install hook that alters the staged image is caught before the switch',
  withDevice('hook', undefined, async (d) => {
    appendFileSync(join(d.dir, 'hooks/install.sh'), '\nprintf X >> "$IOTUPD_IMAGE"\n');
    const r = await cli(d, installArgs(d, d.v2));
    assert.equal(r.code, 1);
    assert.match(r.out, /rolled back v2: .*does not match the signed manifest/);
    assert.equal(activeHash(d), d.v1.hash);
  }),
);

test(
  'a health check that hangs is killed with its whole process group at the timeout, and the update rolls back',
  withDevice('file', undefined, async (d) => {
    const cfg = configFor('file', { health: 'sleep 30 & echo $! >> hang.pids; wait', timeout: 0.5, retries: 1 });
    setConfig(d, cfg);
    const t0 = Date.now();
    const r = await cli(d, installArgs(d, d.v2));
    const took = Date.now() - t0;
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /attempt 1: health check timed out after 0\.5 s/);
    assert.match(r.out, /rolled back v2: health check timed out/);
    assert.ok(took < 15_000, `took ${took} ms`);
    const pids = readFileSync(join(d.dir, 'hang.pids'), 'utf8').trim().split('\n').map(Number);
    assert.equal(pids.length, 2, 'two attempts (retries: 1)');
    for (const pid of pids) assert.ok(!running(pid), `sleep ${pid} was killed with its group`);
    assert.equal(activeHash(d), d.v1.hash);
    assert.ok(agentState(d)?.failed.includes(d.v2.manifestId));
  }),
);

test(
  'hook failures: a failing install hook abandons the release (old version kept, tried at most maxAttempts times); a failing switch hook rolls back',
  withDevice('hook', undefined, async (d) => {
    const install = join(d.dir, 'hooks/install.sh');
    const good = readFileSync(install, 'utf8');
    writeFileSync(install, '#!/bin/sh\necho "flash write error" >&2; exit 3\n');
    for (let i = 1; i <= 3; i++) {
      const r = await cli(d, installArgs(d, d.v2));
      assert.equal(r.code, 1);
      assert.match(r.out, /failed v2: install hook exited 3: flash write error/);
      assert.equal(agentState(d)?.attempts[d.v2.manifestId], i);
    }
    const fourth = await cli(d, installArgs(d, d.v2));
    assert.equal(fourth.code, 0);
    assert.match(fourth.out, /skipped v2 \(attempts\)/);
    assert.equal(activeHash(d), d.v1.hash);
    // v2bad is another release (other manifest id): its switch hook fails.
    writeFileSync(install, good);
    const sw = join(d.dir, 'hooks/switch.sh');
    writeFileSync(sw, '#!/bin/sh\nexit 4\n');
    const r = await cli(d, installArgs(d, d.v2bad));
    assert.equal(r.code, 1);
    assert.match(r.out, /rolled back v2bad: switch hook exited 4/);
    assert.equal(activeHash(d), d.v1.hash);
    assert.equal(installedSequence(d), 1n);
  }),
);

test(
  'restarted with a changed config: the release in progress finishes with the settings it started with',
  withDevice('file', undefined, async (d) => {
    const args = installArgs(d, d.v2);
    const at = await stepIndex(d, args, 'state:switch');
    assert.equal((await cli(d, args, { IOTUPD_AGENT_FAULT: `kill:${at}` })).signal, 'SIGKILL');
    // The operator switches the device to A/B meanwhile: it applies to the next release only.
    const cfg = configFor('ab');
    cfg.healthCheck = { command: './check.sh file', timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    setConfig(d, cfg);
    const r = await cli(d, ['agent', 'resume', '--config', d.config]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /installed v2/);
    assert.equal(sha256hex(readFileSync(join(d.dir, 'app/firmware.bin'))), d.v2.hash);
    assert.deepEqual(readdirSync(join(d.dir, 'ab')), [], 'the new method was not used for the release in progress');
  }),
);

test(
  'loop guard: a health check that kills the agent every time ends in rollback after loopLimit entries, not an endless loop',
  withDevice('file', configFor('file', { loopLimit: 3 }), async (d) => {
    setConfig(d, configFor('file', { loopLimit: 3, health: 'kill -9 $PPID' }));
    const seen: Phase[] = [];
    let runs = 0;
    for (; runs < 10; runs++) {
      const r = await cli(d, installArgs(d, d.v2));
      const s = agentState(d);
      seen.push(s?.phase ?? 'idle');
      if (r.signal === null) {
        assert.match(r.out, /rolled back v2: state 'health-check' entered 3 times/);
        break;
      }
      assert.equal(r.signal, 'SIGKILL');
    }
    assert.equal(runs, 3, `runs: ${seen.join(' ')}`);
    assert.equal(activeHash(d), d.v1.hash);
    assert.ok(agentState(d)?.failed.includes(d.v2.manifestId));
    const again = await cli(d, installArgs(d, d.v2));
    assert.match(again.out, /skipped v2 \(failed-before\)/);
  }),
);

test('config mistakes: one line naming the key, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-config-'));
  try {
    const base = configFor('file');
    const cases: [Record<string, unknown> | string, RegExp][] = [
      ['{"product": ', /not valid JSON/],
      [{ ...base, product: undefined }, /'product' must be a non-empty string/],
      [{ ...base, instal: {} }, /'instal' is not a known key/],
      [{ ...base, install: { method: 'tape' } }, /'install.method' must be one of file, ab, hook/],
      [{ ...base, install: { method: 'file', target: 'x', slots: [] } }, /'install.slots' does not apply to install method 'file'/],
      [{ ...base, install: { method: 'ab', slots: ['a'], pointer: 'p' } }, /'install.slots' must be a list of two paths/],
      [{ ...base, healthCheck: { command: 'true', timeoutSeconds: -1 } }, /'healthCheck.timeoutSeconds' must be a number from 0.1 to 86400/],
      [{ ...base, reboot: { required: true } }, /'reboot.command' is needed when reboot.required is true/],
      [{ ...base, deviceId: undefined, deviceIdFile: 'no-such-id' }, /'deviceIdFile' names .*no-such-id, which cannot be read \(ENOENT\)/],
      [{ ...base, trust: [] }, /'trust' must be a non-empty list/],
    ];
    for (const [cfg, want] of cases) {
      const file = join(dir, 'agent.json');
      writeFileSync(file, typeof cfg === 'string' ? cfg : JSON.stringify(cfg));
      const r = await cli({ dir }, ['agent', 'install', '--config', file, '--manifest', 'm', '--image', 'i']);
      assert.equal(r.code, 2, `${r.err} for ${want}`);
      assert.match(r.err, want);
      assert.equal(r.err.trim().split('\n').length, 1, 'one line');
      assert.match(r.err, /^iotupd: config /);
      assert.throws(() => parseAgentConfig(typeof cfg === 'string' ? cfg : JSON.stringify(cfg), file), (e: unknown) => e instanceof UsageError && e.code === 'ERR_CONFIG');
    }
    const missing = await cli({ dir }, ['agent', 'install', '--config', join(dir, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /^iotupd: config .*nope\.json: cannot be read \(ENOENT\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('library: typed events in order, status, and the signed release policy (device class, hardware, activation window)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-lib-'));
  try {
    const d = makeDevice(dir, 'file');
    const cfg = configFor('file', { health: `${join(dir, 'check.sh')} file` });
    const config = parseAgentConfig(JSON.stringify({ ...cfg, deviceClass: 'gateway', hardware: 'rev-c' }), join(dir, 'agent.json'));
    // The health check script reads paths relative to the device directory.
    config.healthCheck = { command: `cd ${dir} && ./check.sh file`, timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    const agent = new Agent({ config, waitForRollout: false });
    const states: Phase[] = [];
    const installed: string[] = [];
    const skipped: string[] = [];
    agent.on('state', (e) => states.push(e.phase));
    agent.on('installed', (o) => installed.push(o.version));
    agent.on('skipped', (s) => skipped.push(`${s.version}:${s.reason}`));
    const r1 = await agent.run(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
    assert.deepEqual(r1.map((r) => r.result), ['installed']);
    assert.deepEqual(states, ['download', 'verify', 'install', 'switch', 'health-check', 'commit', 'idle']);
    assert.deepEqual(installed, ['v1']);
    assert.equal(agent.status.installedSequence, '1');
    assert.equal(agent.status.installedVersion, 'v1');
    // Signed policy: another device class, another board, a window not open yet, then one that fits.
    const rel = join(dir, 'rel');
    const otherClass = makeRelease(rel, 'v2-sensors', 2n, { deviceClasses: ['outdoor', 'sensor'] });
    const otherBoard = makeRelease(rel, 'v2-rev-a', 2n, { deviceClasses: ['gateway'], hardware: ['rev-a', 'rev-b'] });
    const later = makeRelease(rel, 'v2-later', 2n, { activation: { notBefore: NOW + 3600, notAfter: NOW + 7200 } });
    const fits = makeRelease(rel, 'v2-fits', 2n, { deviceClasses: ['gateway', 'sensor'], hardware: ['rev-c'], activation: { notBefore: NOW - 60, notAfter: NOW + 3600 } });
    const results = [];
    for (const img of [otherClass, otherBoard, later]) results.push(...(await agent.run(new BundleSource(img.manifestFile, img.imageFile))));
    assert.deepEqual(results.map((r) => r.result), ['skipped', 'skipped', 'waiting']);
    assert.deepEqual(skipped, ['v2-sensors:device-class', 'v2-rev-a:hardware']);
    writeFileSync(join(dir, 'good.txt'), `${d.v1.hash}\n${fits.hash}\n`);
    const ok = await agent.run(new BundleSource(fits.manifestFile, fits.imageFile));
    assert.deepEqual(ok.map((r) => r.result), ['installed']);
    assert.equal(activeHash(d), fits.hash);
    assert.deepEqual(installed, ['v1', 'v2-fits']);
    // Anti-rollback: the old release, validly signed, is refused now.
    const down = await agent.run(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
    assert.equal(down[0]?.result === 'skipped' && down[0].skip.reason, 'not-newer');
    assert.equal(activeHash(d), fits.hash);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('examples/agent/agent.json is a valid config', () => {
  const file = fileURLToPath(new URL('../../../examples/agent/agent.json', import.meta.url));
  const cfg = parseAgentConfig(readFileSync(file, 'utf8'), file, (p) => {
    assert.equal(p, '/etc/machine-id');
    return '0123456789abcdef0123456789abcdef\n';
  });
  assert.equal(cfg.deviceId, '0123456789abcdef0123456789abcdef');
  assert.equal(cfg.install.method, 'ab');
  assert.deepEqual(cfg.trust, ['/etc/iotupd/root.pub']);
  assert.equal(cfg.healthCheck?.retries, 3);
  assert.equal(cfg.status && cfg.status.budget.fleetSize, 10_000);
});

test('A/B with directory slots: a tar image is unpacked into the inactive slot, the pointer flips, a bad one flips back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-abdir-'));
  try {
    const cfg = configFor('ab');
    cfg.install = { method: 'ab', slots: ['ab/slot-a', 'ab/slot-b'], pointer: 'ab/active', slotType: 'dir' };
    // Healthy when the active slot's app says "ok".
    cfg.healthCheck = { command: 'p=$(cat ab/active); grep -qx ok "ab/slot-$p/app/health"', timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    const d = makeDevice(dir, 'ab', cfg);
    const tarball = (name: string, health: string): Uint8Array => {
      const src = join(dir, `src-${name}`);
      spawnSync('mkdir', ['-p', join(src, 'app')]);
      writeFileSync(join(src, 'app/health'), `${health}\n`);
      writeFileSync(join(src, 'app/version'), `${name}\n`);
      const r = spawnSync('tar', ['-cf', '-', '-C', src, 'app']);
      assert.equal(r.status, 0);
      return new Uint8Array(r.stdout);
    };
    const v1 = signRelease(join(dir, 'rel'), 'd1', 1n, tarball('d1', 'ok'));
    const v2 = signRelease(join(dir, 'rel'), 'd2', 2n, tarball('d2', 'ok'));
    const v3 = signRelease(join(dir, 'rel'), 'd3', 3n, tarball('d3', 'broken'));
    const version = () => readFileSync(join(dir, 'ab', `slot-${readFileSync(join(dir, 'ab/active'), 'utf8').trim()}`, 'app/version'), 'utf8').trim();
    for (const [img, want, code, slot] of [
      [v1, 'd1', 0, 'b'],
      [v2, 'd2', 0, 'a'],
      [v3, 'd2', 1, 'a'],
    ] as const) {
      const r = await cli(d, installArgs(d, img));
      assert.equal(r.code, code, r.out + r.err);
      assert.equal(version(), want);
      assert.equal(readFileSync(join(dir, 'ab/active'), 'utf8').trim(), slot);
    }
    assert.equal(installedSequence(d), 2n);
    assert.deepEqual(readdirSync(join(dir, 'ab')).sort(), ['active', 'slot-a', 'slot-b']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('library: start() runs a source in the background; stop() aborts a running health check, kills its group, and leaves the state to resume', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-stop-'));
  try {
    const d = makeDevice(dir, 'file');
    const cfg = configFor('file');
    const config = parseAgentConfig(JSON.stringify(cfg), join(dir, 'agent.json'));
    config.healthCheck = { command: `cd ${dir} && ./check.sh file`, timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    const first = new Agent({ config });
    const done = new Promise<string>((resolve) => first.once('installed', (o) => resolve(o.version)));
    first.start(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
    assert.equal(await done, 'v1');
    await first.stop();

    config.healthCheck = { command: `sleep 30 & echo $! > ${join(dir, 'sleep.pid')}; wait`, timeoutSeconds: 60, retries: 0, retryDelaySeconds: 0 };
    const agent = new Agent({ config });
    const checking = new Promise<void>((resolve) => agent.on('state', (e) => e.phase === 'health-check' && resolve()));
    agent.start(new BundleSource(d.v2.manifestFile, d.v2.imageFile));
    await checking;
    // Give the shell time to start its sleep.
    for (let i = 0; i < 100 && !readdirSync(dir).includes('sleep.pid'); i++) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await agent.stop();
    assert.ok(Date.now() - t0 < 5000, 'stop() returns promptly');
    const pid = Number(readFileSync(join(dir, 'sleep.pid'), 'utf8'));
    // SIGKILL to the group is sent before stop() returns; on a loaded machine the orphaned sleep
    // may take a moment to be scheduled and die (it would live 30 s if it had not been sent).
    for (let i = 0; i < 100 && running(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(pid > 0 && !running(pid), 'the health check was killed with its group');
    assert.equal(agentState(d)?.phase, 'health-check', 'stopped, not failed: resumed at the next start');
    assert.equal(activeHash(d), d.v2.hash);
    // The next start resumes it; with a passing health check it commits.
    config.healthCheck = { command: `cd ${dir} && ./check.sh file`, timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    const again = new Agent({ config });
    const r = await again.resume();
    assert.equal(r.result, 'installed');
    assert.equal(again.status.installedVersion, 'v2');
    const status = await cli(d, ['agent', 'status', '--config', d.config, '--json']);
    assert.equal(status.code, 0, status.err);
    const s = JSON.parse(status.out) as { phase: string; installedSequence: string; last: { result: string } };
    assert.deepEqual([s.phase, s.installedSequence, s.last.result], ['idle', '2', 'installed']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
