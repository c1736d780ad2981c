// Releases on disk (src/publish/release.ts) and `iotupd release create` (no network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signManifest, verifyManifest } from '../../src/crypto/manifest.js';
import { saveKeyPair } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { IotupdError } from '../../src/errors.js';
import { checkImage, loadReleaseDir, loadReleasesConfig, loadReleasesDir } from '../../src/publish/release.js';
import { hierarchy, keyFromSeed, release, T0 } from '../crypto/fixtures.js';

const MAIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'iotupd-release-'));
}

function writeRelease(dir: string, sequence: bigint, opts: { halt?: string; image?: Uint8Array } = {}): Uint8Array {
  const { signer } = hierarchy();
  const r = release(sequence, { expires: 4_000_000_000 });
  mkdirSync(dir, { recursive: true });
  const bytes = signManifest(r.fields, signer);
  writeFileSync(join(dir, 'manifest'), bytes);
  writeFileSync(join(dir, 'image'), opts.image ?? r.object);
  if (opts.halt !== undefined) writeFileSync(join(dir, 'halt'), opts.halt);
  return bytes;
}

/** A signer key (DIR/signer.key) and an image in `dir`, and `iotupd release create ARGS` to run. */
function releaseCli(dir: string): { image: string; run: (...args: string[]) => SpawnSyncReturns<string> } {
  saveKeyPair(join(dir, 'signer'), hierarchy().signer);
  const image = join(dir, 'image.bin');
  writeFileSync(image, release(3n).object);
  return { image, run: (...args) => spawnSync(process.execPath, [MAIN, 'release', 'create', ...args], { encoding: 'utf8' }) };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof IotupdError) return err.code;
    throw err;
  }
  return 'none';
}

test('a release directory loads with the manifest id devices compute', async () => {
  const dir = tmp();
  try {
    const bytes = writeRelease(join(dir, 'r'), 4n);
    const r = loadReleaseDir(join(dir, 'r'));
    const { trust } = hierarchy();
    const m = verifyManifest(bytes, trust, { product: 'sensor-v2', installedSequence: 0n }, T0);
    assert.deepEqual(r.manifestId, m.manifestId);
    assert.equal(r.fields.sequence, 4n);
    assert.equal(r.halt, undefined);
    await checkImage(r);
    // With the devices' trust store it is verified as they would.
    assert.deepEqual(loadReleaseDir(join(dir, 'r'), { trust, now: T0 }).manifestId, m.manifestId);
    const stranger = new TrustStore([keyFromSeed('another root')]);
    assert.equal(code(() => loadReleaseDir(join(dir, 'r'), { trust: stranger, now: T0 })), 'ERR_RELEASE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an image that does not match its manifest is refused (size at load, hash by checkImage)', async () => {
  const dir = tmp();
  try {
    const r = release(4n);
    writeRelease(join(dir, 'short'), 4n, { image: r.object.subarray(1) });
    assert.equal(code(() => loadReleaseDir(join(dir, 'short'))), 'ERR_RELEASE');
    const other = r.object.slice();
    other[100] = (other[100] as number) ^ 1;
    writeRelease(join(dir, 'bad'), 4n, { image: other });
    const loaded = loadReleaseDir(join(dir, 'bad'));
    await assert.rejects(checkImage(loaded), (e: unknown) => e instanceof IotupdError && e.code === 'ERR_RELEASE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('halt files: rollback, stop; a halted release needs no image', () => {
  const dir = tmp();
  try {
    writeRelease(join(dir, 'a'), 4n, { halt: 'rollback\n' });
    writeRelease(join(dir, 'b'), 4n, { halt: '' });
    writeRelease(join(dir, 'c'), 4n, { halt: 'stop because' });
    rmSync(join(dir, 'c', 'image'));
    assert.equal(loadReleaseDir(join(dir, 'a')).halt, 'rollback');
    assert.equal(loadReleaseDir(join(dir, 'b')).halt, 'stop');
    assert.equal(loadReleaseDir(join(dir, 'c')).halt, 'stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a directory of releases: good ones load, bad ones are reported, partial and hidden ones skipped', () => {
  const dir = tmp();
  try {
    writeRelease(join(dir, 'good'), 4n);
    writeRelease(join(dir, 'good2'), 5n);
    mkdirSync(join(dir, 'empty'));
    writeRelease(join(dir, '.r.partial-x'), 6n);
    mkdirSync(join(dir, 'garbage'));
    writeFileSync(join(dir, 'garbage', 'manifest'), 'not a manifest');
    const res = loadReleasesDir(dir);
    assert.deepEqual(res.releases.map((r) => r.fields.sequence), [4n, 5n]);
    assert.equal(res.errors.length, 1);
    assert.match(res.errors[0]?.source ?? '', /garbage$/);
    assert.equal(code(() => loadReleasesDir(join(dir, 'missing'))), 'ERR_STORAGE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a config file: paths relative to it, entry errors reported, unreadable config refused', () => {
  const dir = tmp();
  try {
    writeRelease(join(dir, 'r4'), 4n);
    writeRelease(join(dir, 'r5'), 5n, { halt: 'rollback' });
    const conf = join(dir, 'releases.json');
    writeFileSync(
      conf,
      JSON.stringify({
        releases: [{ manifest: 'r4/manifest', image: 'r4/image' }, { manifest: 'r5/manifest', halt: 'rollback' }, { manifest: 'r4/manifest' }, { manifest: 'r4/manifest', image: 'r4/image', halt: 'maybe' }],
      }),
    );
    const res = loadReleasesConfig(conf);
    assert.deepEqual(res.releases.map((r) => [r.fields.sequence, r.halt]), [[4n, undefined], [5n, 'rollback']]);
    assert.equal(res.errors.length, 2);
    writeFileSync(conf, '{ nope');
    assert.equal(code(() => loadReleasesConfig(conf)), 'ERR_CONFIG');
    writeFileSync(conf, '[]');
    assert.equal(code(() => loadReleasesConfig(conf)), 'ERR_CONFIG');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('iotupd release create: a complete directory or nothing; bad input is one line and exit 2', () => {
  const dir = tmp();
  try {
    const { image, run } = releaseCli(dir);
    const base = ['--image', image, '--key', join(dir, 'signer.key'), '--product', 'sensor-v2'];
    const ok = run(...base, '--sequence', '3', '--out', join(dir, 'rel', 'r3'), '--json');
    assert.equal(ok.status, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout) as { manifestId: string; size: number };
    const r = loadReleaseDir(join(dir, 'rel', 'r3'));
    assert.equal(Buffer.from(r.manifestId).toString('hex'), summary.manifestId);
    assert.equal(r.fields.size, 10_000);
    assert.equal(statSync(join(dir, 'rel', 'r3')).mode & 0o777, 0o755);
    for (const [args, pattern] of [
      [[...base, '--sequence', '3', '--out', join(dir, 'rel', 'r3')], /already exists/],
      [[...base, '--sequence', '0', '--out', join(dir, 'rel', 'x')], /--sequence/],
      [[...base, '--sequence', '3', '--out', join(dir, 'rel', 'y'), '--expires', '2001-01-01'], /--expires/],
      [['--image', join(dir, 'nope'), '--key', join(dir, 'signer.key'), '--product', 'p', '--sequence', '1', '--out', join(dir, 'rel', 'z')], /does not exist/],
    ] as [string[], RegExp][]) {
      const bad = run(...args);
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, pattern);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    }
    // Failed runs leave nothing behind (no partial or hidden directories).
    assert.deepEqual(readdirSync(join(dir, 'rel')), ['r3']);
    assert.ok(!existsSync(join(dir, 'rel', 'x')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('iotupd release create: policy options go into the signed manifest; mistakes are one line and exit 2', () => {
  const dir = tmp();
  try {
    const { image, run } = releaseCli(dir);
    const base = ['--image', image, '--key', join(dir, 'signer.key'), '--product', 'sensor-v2', '--sequence', '3'];
    const now = Math.floor(Date.now() / 1000);
    const ok = run(...base, '--out', join(dir, 'rel', 'p'), '--device-class', 'gateway,cam', '--hardware', 'rev-c', '--wave', '+0s=10', '--wave', '+1d=50', '--wave', '+2d=100', '--active-from', '+1h', '--active-until', '+10d', '--switch-at', '+2h');
    assert.equal(ok.status, 0, ok.stderr);
    const f = loadReleaseDir(join(dir, 'rel', 'p')).fields;
    assert.deepEqual(f.deviceClasses, ['cam', 'gateway'], 'sorted as the manifest requires');
    assert.deepEqual(f.hardware, ['rev-c']);
    assert.deepEqual(f.rolloutWaves?.map((w) => w.basisPoints), [1000, 5000, 10000]);
    assert.ok(Math.abs((f.rolloutWaves?.[1]?.start ?? 0) - (now + 86400)) <= 5);
    assert.ok(Math.abs((f.activation?.notBefore ?? 0) - (now + 3600)) <= 5);
    assert.ok(Math.abs((f.activation?.notAfter ?? 0) - (now + 10 * 86400)) <= 5);
    assert.ok(Math.abs((f.switchAt ?? 0) - (now + 7200)) <= 5);
    assert.equal(f.rolloutBasisPoints, undefined);
    const share = run(...base, '--out', join(dir, 'rel', 'q'), '--rollout', '25');
    assert.equal(share.status, 0, share.stderr);
    assert.equal(loadReleaseDir(join(dir, 'rel', 'q')).fields.rolloutBasisPoints, 2500);
    for (const [args, pattern] of [
      [['--rollout', '10', '--wave', '+0s=10'], /--wave and --rollout exclude each other/],
      [['--wave', '+1d=50', '--wave', '+0s=60'], /each wave must start after the one before/],
      [['--wave', '+0s=50', '--wave', '+1d=40'], /fewer devices/],
      [['--wave', 'soon'], /--wave must be TIME=PERCENT/],
      [['--wave', '+0s=150'], /--wave/],
      [['--device-class', 'a,,b'], /--device-class: each name/],
      [['--hardware', 'x'.repeat(65)], /--hardware: each name/],
      [['--active-from', '+2d', '--active-until', '+1d'], /--active-from must be before --active-until/],
      [['--active-from', 'whenever'], /--active-from must be an ISO date/],
      [['--switch-at', '+60d'], /switch time is after the release expires/],
    ] as [string[], RegExp][]) {
      const bad = run(...base, '--out', join(dir, 'rel', 'bad'), ...args);
      assert.equal(bad.status, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, pattern);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    }
    assert.deepEqual(readdirSync(join(dir, 'rel')).sort(), ['p', 'q']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
