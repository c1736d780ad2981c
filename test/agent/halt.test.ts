// Signed HALTs as the agent acts on them (docs/agent.md "Halts"): a release in progress is stopped
// before its switch and never taken again; a committed release is rolled back by the install
// method when it still has the previous version. The multicast path is in test/agent/lab.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { BundleSource, type Offer, type ReleaseSource } from '../../src/agent/source.js';
import { activeHash, agentState, configFor, installedSequence, makeDevice, type Device, type Method } from './helpers.js';

/** A source whose data arrives only when `release()` is called (a slow download). */
class HeldSource implements ReleaseSource {
  #go: (() => void) | undefined;
  fetching = false;
  constructor(
    readonly manifestPath: string,
    readonly imagePath: string,
  ) {}
  async *offers(): AsyncIterable<Offer> {
    yield { manifest: new Uint8Array(readFileSync(this.manifestPath)), origin: 'held' };
  }
  release(): void {
    this.#go?.();
  }
  async fetch(_o: Offer, _m: unknown, dest: string, signal: AbortSignal): Promise<void> {
    this.fetching = true;
    await new Promise<void>((resolve, reject) => {
      this.#go = resolve;
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
    copyFileSync(this.imagePath, dest);
  }
}

function agentFor(d: Device, method: Method): Agent {
  return new Agent({ config: parseAgentConfig(JSON.stringify(configFor(method)), d.config) });
}

async function withDevice(method: Method, fn: (d: Device) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `iotupd-halt-${method}-`));
  const cwd = process.cwd();
  try {
    const d = makeDevice(dir, method);
    // The device's scripts (health check, hooks) are named relative to its directory.
    process.chdir(dir);
    const r = await agentFor(d, method).run(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
    assert.equal(r[0]?.result, 'installed');
    await fn(d);
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('halt during the download: the release is stopped before its switch, recorded, and not taken again', () =>
  withDevice('file', async (d) => {
    const agent = agentFor(d, 'file');
    const src = new HeldSource(d.v2.manifestFile, d.v2.imageFile);
    const events: string[] = [];
    agent.on('halted', (e) => events.push(e.action));
    agent.on('state', async (e) => {
      if (e.phase === 'download') {
        // The halt comes while the data is still on its way.
        for (let i = 0; i < 50 && !src.fetching; i++) await new Promise((r) => setTimeout(r, 10));
        await agent.halt({ manifestId: d.v2.manifestId, sequence: 2n, rollback: false });
      }
    });
    const [r] = await agent.run(src);
    assert.equal(r?.result, 'failed');
    assert.equal(r?.result === 'failed' ? r.outcome.code : '', 'ERR_HALTED');
    assert.deepEqual(events, ['stopped']);
    assert.equal(activeHash(d), d.v1.hash, 'the old version never stopped being in use');
    assert.equal(installedSequence(d), 1n);
    const s = agentState(d);
    assert.equal(s?.phase, 'idle');
    assert.ok(s?.halted?.includes(d.v2.manifestId));
    // Offered again (complete, at once): refused.
    const again = await agentFor(d, 'file').run(new BundleSource(d.v2.manifestFile, d.v2.imageFile));
    assert.equal(again[0]?.result, 'skipped');
    assert.equal(again[0]?.result === 'skipped' ? again[0].skip.reason : '', 'halted');
    assert.equal(activeHash(d), d.v1.hash);
  }));

for (const method of ['file', 'ab'] as const) {
  test(`halt with rollback of a committed release (${method}): the previous version runs again, the sequence stays`, () =>
    withDevice(method, async (d) => {
      const agent = agentFor(d, method);
      const [r] = await agent.run(new BundleSource(d.v2.manifestFile, d.v2.imageFile));
      assert.equal(r?.result, 'installed');
      assert.equal(activeHash(d), d.v2.hash);
      const plain = await agent.halt({ manifestId: d.v2.manifestId, sequence: 2n, rollback: false });
      assert.equal(plain.action, 'recorded', 'a halt without rollback leaves an installed release');
      assert.equal(activeHash(d), d.v2.hash);
      // The same release halted again with rollback (a publisher may change stop to rollback).
      const fresh = agentFor(d, method);
      const h = await fresh.halt({ manifestId: d.v2.manifestId, sequence: 2n, rollback: true });
      assert.equal(h.action, 'recorded', 'a halt already handled is not acted on twice');
      assert.equal(activeHash(d), d.v2.hash);
    }));

  test(`halt with rollback (${method}) of the committed release reverts it`, () =>
    withDevice(method, async (d) => {
      const agent = agentFor(d, method);
      assert.equal((await agent.run(new BundleSource(d.v2.manifestFile, d.v2.imageFile)))[0]?.result, 'installed');
      const rolled: string[] = [];
      agent.on('rolled-back', (o) => rolled.push(o.version));
      const h = await agent.halt({ manifestId: d.v2.manifestId, sequence: 2n, rollback: true });
      assert.equal(h.action, 'rolled-back', h.detail);
      assert.deepEqual(rolled, ['v2']);
      assert.equal(activeHash(d), d.v1.hash, 'the previous version is in use again');
      assert.equal(installedSequence(d), 2n, 'anti-rollback: the halted sequence stays recorded');
      const s = agent.status;
      assert.equal(s.reverted?.haltedSequence, '2');
      assert.equal(s.runningVersion, s.reverted?.version);
      assert.notEqual(s.runningVersion, s.installedVersion);
      // Nothing lower is taken from a source afterwards: release 1 again is not newer.
      const again = await agent.run(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
      assert.equal(again[0]?.result === 'skipped' ? again[0].skip.reason : again[0]?.result, 'not-newer');
    }));
}

test('halt with rollback when the hook method cannot revert: recorded as not revertible', () =>
  withDevice('hook', async (d) => {
    const agent = agentFor(d, 'hook');
    assert.equal((await agent.run(new BundleSource(d.v2.manifestFile, d.v2.imageFile)))[0]?.result, 'installed');
    const h = await agent.halt({ manifestId: d.v2.manifestId, sequence: 2n, rollback: true });
    assert.equal(h.action, 'not-revertible');
    assert.equal(activeHash(d), d.v2.hash);
    assert.ok(agent.status.failed.includes(d.v2.manifestId));
  }));
