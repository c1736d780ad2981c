// Crash safety, as MCUboot's simulator does it: count every persisted step of a clean update (each
// state write, each write of a target, slot or pointer, each hook run), then for every step i
// run the same update again in a real child process that SIGKILLs itself at step i, restart the
// agent without faults, and check that the device ends with the old or the new version in place
// and working, never half-written, never a downgrade, never an install loop. The same along the
// rollback path (the new version fails its health check), for each install method.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeHash, agentState, cli, configFor, copyDevice, installArgs, installedSequence, makeDevice, pool, sha256hex, type Device, type Image, type Method } from './helpers.js';

/**
 * Invocations of `agent install` until the agent rests (a reboot needs a second one). Each one
 * resumes the release in progress, then judges the offer again. Returns the count and the last
 * run's output.
 */
async function untilIdle(d: Device, img: Image, limit: number): Promise<{ runs: number; out: string }> {
  for (let n = 1; n <= limit; n++) {
    const r = await cli(d, installArgs(d, img));
    assert.equal(r.signal, null, r.out + r.err);
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.err}`);
    const s = agentState(d);
    if (s?.phase === 'idle') return { runs: n, out: r.out };
  }
  assert.fail(`agent not idle after ${limit} runs: ${JSON.stringify(agentState(d))}`);
}

/** `prev`: the file method keeps the replaced version after a commit, for a halt's rollback. */
function leftovers(d: Device, prev = false): string[] {
  const out: string[] = [];
  const rel = join(d.stateDir, 'releases');
  for (const f of readdirSync(rel)) out.push(`state/releases/${f}`);
  for (const f of readdirSync(join(d.dir, 'app'))) if (f !== 'firmware.bin' && !(prev && f === 'firmware.bin.iotupd-prev')) out.push(`app/${f}`);
  return out;
}

interface Plan {
  method: Method;
  reboot: boolean;
}

async function matrix(t: { diagnostic(m: string): void }, plan: Plan, path: 'update' | 'rollback'): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), `iotupd-crash-${plan.method}-`));
  try {
    const template = makeDevice(join(root, 'template'), plan.method, configFor(plan.method, { reboot: plan.reboot }));
    // The old version, installed by the agent itself.
    assert.ok((await untilIdle(template, template.v1, 3)).runs <= 2);
    assert.equal(activeHash(template), template.v1.hash);
    assert.equal(installedSequence(template), 1n);
    const pick = (d: Device) => (path === 'update' ? d.v2 : d.v2bad);
    const next = pick(template);
    const old = template.v1;

    // Count the steps of a clean run, per invocation (a reboot ends the first one).
    const counted = copyDevice(template, join(root, 'count'));
    const perRun: string[][] = [];
    for (let n = 1; n <= 3; n++) {
      const file = join(counted.dir, `steps-${n}.txt`);
      const r = await cli(counted, installArgs(counted, pick(counted)), { IOTUPD_AGENT_FAULT: `count:${file}` });
      assert.equal(r.signal, null);
      let steps: string[] = [];
      try {
        steps = readFileSync(file, 'utf8').trim().split('\n');
      } catch {
        // no steps in this invocation
      }
      perRun.push(steps);
      if (agentState(counted)?.phase === 'idle') break;
    }
    const total = perRun.reduce((a, s) => a + s.length, 0);
    t.diagnostic(`${plan.method}${plan.reboot ? '+reboot' : ''} ${path}: ${total} steps over ${perRun.length} run(s): ${perRun.map((s) => s.join(' ')).join(' | ')}`);
    assert.ok(total >= 12, `too few steps counted: ${total}`);
    for (const want of ['state:download', 'state:switch', 'state:health-check', path === 'update' ? 'state:commit' : 'state:rollback']) {
      assert.ok(perRun.flat().includes(want), `step ${want} counted`);
    }
    const expected = path === 'update' ? next : old;
    assert.equal(activeHash(counted), expected.hash);

    const cases = Array.from({ length: total }, (_, k) => k + 1).map((i) => async () => {
      const d = copyDevice(template, join(root, `kill-${i}`));
      // Which invocation holds global step i, and where in it.
      let run = 0;
      let local = i;
      while (local > (perRun[run] as string[]).length) local -= (perRun[run++] as string[]).length;
      const stepName = (perRun[run] as string[])[local - 1];
      const mine = pick(d);
      for (let n = 0; n < run; n++) await cli(d, installArgs(d, mine));
      const killed = await cli(d, installArgs(d, mine), { IOTUPD_AGENT_FAULT: `kill:${local}` });
      assert.equal(killed.signal, 'SIGKILL', `step ${i} (${stepName}) was reached and killed the agent`);
      // Right after the crash: a complete old or new image is in use, never a torn one.
      const mid = activeHash(d);
      assert.ok(mid === old.hash || mid === next.hash, `after a kill at step ${i} (${stepName}) the image in use is complete`);
      const { runs, out } = await untilIdle(d, mine, 4);
      assert.ok(runs <= 3, `step ${i} (${stepName}): ${runs} restarts to settle`);
      assert.equal(activeHash(d), expected.hash, `step ${i} (${stepName}): ends with ${expected.name}`);
      assert.equal(installedSequence(d), expected.sequence, `step ${i} (${stepName}): installed sequence`);
      const s = agentState(d);
      assert.equal(s?.phase, 'idle');
      if (path === 'rollback') assert.ok(s?.failed.includes(next.manifestId), `step ${i}: the failed release is recorded`);
      const keptPrev = plan.method === 'file' && path === 'update';
      assert.deepEqual(leftovers(d, keptPrev), [], `step ${i} (${stepName}): no staged or temporary files left`);
      if (keptPrev) {
        assert.equal(sha256hex(readFileSync(join(d.dir, 'app', 'firmware.bin.iotupd-prev'))), old.hash, `step ${i} (${stepName}): the previous version is kept`);
      }
      // The device works: its health check passes for what is in use.
      const health = spawnSync('./check.sh', [d.method], { cwd: d.dir });
      assert.equal(health.status, 0, `step ${i} (${stepName}): health check of the image in use`);
      // Offered again, the release is not installed again (no loop) and nothing changes. The
      // restart judged the offer again after settling, unless it installed from scratch.
      let again = out;
      if (!/skipped/.test(again)) {
        const r = await cli(d, installArgs(d, mine));
        assert.equal(r.code, 0, r.err);
        again = r.out;
      }
      assert.match(again, /skipped( \S+)? \((not-newer|failed-before)\)/, `step ${i} (${stepName})`);
      assert.equal(activeHash(d), expected.hash);
      rmSync(d.dir, { recursive: true, force: true });
      return stepName;
    });
    const names = await pool(3, cases);
    assert.equal(names.length, total);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const plans: Plan[] = [
  { method: 'file', reboot: false },
  { method: 'ab', reboot: true },
  { method: 'hook', reboot: false },
];

for (const plan of plans) {
  for (const path of ['update', 'rollback'] as const) {
    test(`crash matrix: ${plan.method}${plan.reboot ? ' (switch needs a reboot)' : ''}, ${path} path, SIGKILL at every persisted step`, async (t) => {
      await matrix(t, plan, path);
    });
  }
}
