// The file-level glue the CLI uses: a file sender with a group sealer, the manifest signed from
// the file, a device guard built from key files and a state directory; then the state commit and
// a replay of the same release, refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileSender } from '../../src/transfer/driver.js';
import { FileStore, FountainReceiver } from '../../src/transfer/receiver/index.js';
import { generateGroupKey, saveGroupKey, saveKeyPair } from '../../src/crypto/keys.js';
import { groupSealer, SecureSender } from '../../src/crypto/guard.js';
import { blockCommitments, signFileManifest } from '../../src/crypto/secure-transfer.js';
import { receiveSecurity } from '../../src/session/receive-security.js';
import { hierarchy, randomBytesSeeded, T0, DAY } from './fixtures.js';

test('file sender + signed manifest + device guard from files: installs once, then refuses the replay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-st-'));
  try {
    const { root, signer } = hierarchy();
    saveKeyPair(join(dir, 'root'), root);
    const gkFile = join(dir, 'group.key');
    const gk = generateGroupKey();
    saveGroupKey(gkFile, gk);
    const file = join(dir, 'fw.bin');
    const object = randomBytesSeeded(300_000, 77);
    writeFileSync(file, object);
    const sealer = groupSealer(gk, 'aes-256-gcm');
    const release = { product: 'sensor-v2', sequence: 9n, version: '9.0', created: T0 - DAY, expires: T0 + DAY, groupKey: gk, cipher: 'aes-256-gcm' as const, digests: true };
    const runOnce = async () => {
      const commitments = blockCommitments();
      const inner = await createFileSender({ file, sealer, maxBlockSymbols: 100, observe: commitments.observe });
      const manifest = signFileManifest(inner, commitments.blockHashes(), signer, release);
      const sender = new SecureSender({ inner, objectId: inner.objectId, manifest, sealer, signingKey: signer, digests: true });
      // The library's receive-side security stage (src/session/receive-security.ts), on a fixed clock.
      const sec = receiveSecurity({ trust: [join(dir, 'root.pub')], groupKey: gkFile, stateDir: join(dir, 'state'), product: 'sensor-v2', cipher: 'aes-256-gcm', requireEncryption: true, clock: () => T0 });
      const out = join(dir, 'installed.bin');
      const receiver = new FountainReceiver({ store: new FileStore({ out }), checkBlock: (sbn, data) => sec.checkBlock(sbn, data) });
      let done = false;
      for (let i = 0; i < 2000 && !done; i++) {
        const s = sender.next(i);
        if (!('datagram' in s)) continue;
        const d = sec.filter(s.datagram);
        if (d) done = receiver.push(d, i) === 'complete';
      }
      const info = receiver.info;
      receiver.close();
      return { done, guard: sec.guard, sec, info, out };
    };
    const first = await runOnce();
    assert.equal(first.done, true);
    assert.deepEqual(new Uint8Array(readFileSync(first.out)), object);
    assert.equal(first.guard.stats.manifestsVerified, 1);
    assert.ok(first.guard.stats.blocksVerified >= 3, 'every block checked against the manifest before it was written');
    assert.equal(first.guard.stats.blocksRejected, 0);
    // The object against the manifest, then the install recorded (anti-rollback state).
    const m = first.sec.commit(first.out, first.info!);
    assert.equal(m.sequence, 9n);
    rmSync(first.out);
    // The same release again (a replay): the device now refuses the manifest and so every packet.
    const second = await runOnce();
    assert.equal(second.done, false);
    assert.ok((second.guard.stats.manifestErrors.ERR_ROLLBACK ?? 0) >= 1);
    assert.equal(second.guard.stats.delivered, 0);
    assert.ok(second.guard.stats.drops['no-manifest'] > 100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
