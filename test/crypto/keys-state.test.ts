// Key files (permissions from creation, refusal of world-readable secrets, self-describing PEM),
// group keys, the anti-rollback state file, and packet authentication properties.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../src/crypto/bytes.js';
import { issueDelegation } from '../../src/crypto/certs.js';
import {
  generateGroupKey,
  generateSigningKey,
  groupKeyIdOf,
  loadGroupKey,
  loadPublicKey,
  loadSigningKey,
  saveGroupKey,
  saveKeyPair,
} from '../../src/crypto/keys.js';
import { signManifest, verifyManifest } from '../../src/crypto/manifest.js';
import { DeviceState } from '../../src/crypto/rollback.js';
import { PacketAuth, type AuthSuite } from '../../src/crypto/packet-auth.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { hierarchy, release, T0 } from './fixtures.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'iotupd-crypto-'));
}

test('key pair files: .key is 0600 from creation, .pub readable; both load back; no overwrite', () => {
  const dir = tmp();
  const old = process.umask(0o000); // even with a permissive umask the secret file is 0600
  try {
    const root = generateSigningKey();
    const key = generateSigningKey();
    key.chain = [issueDelegation(root, key.publicKey, { products: ['p'], notBefore: 0, notAfter: T0 })];
    const { keyFile, pubFile } = saveKeyPair(join(dir, 'dev'), key);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(pubFile).mode & 0o777, 0o644);
    const back = loadSigningKey(keyFile);
    assert.equal(toHex(back.publicKey), toHex(key.publicKey));
    assert.equal(back.chain.length, 1);
    const pub = loadPublicKey(pubFile);
    assert.equal(toHex(pub.keyId), toHex(key.keyId));
    assert.match(readFileSync(pubFile, 'utf8'), new RegExp(`key id ${toHex(key.keyId)}`));
    assert.throws(() => saveKeyPair(join(dir, 'dev'), key), { code: 'ERR_USAGE' });
    // A signature by the loaded key verifies against the loaded public key.
    const m = signManifest(release(1n, { product: 'p' }).fields, back);
    assert.equal(verifyManifest(m, new TrustStore([root]), { product: 'p', installedSequence: 0n }, T0 - 1).sequence, 1n);
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secret files readable by group or others are refused; garbage files give a clear error', () => {
  const dir = tmp();
  try {
    const { keyFile } = saveKeyPair(join(dir, 'k'), generateSigningKey());
    chmodSync(keyFile, 0o640);
    assert.throws(() => loadSigningKey(keyFile), { code: 'ERR_KEY_PERMS' });
    const gk = join(dir, 'group.key');
    saveGroupKey(gk, generateGroupKey());
    assert.equal(statSync(gk).mode & 0o777, 0o600);
    assert.equal(loadGroupKey(gk).length, 32);
    chmodSync(gk, 0o604);
    assert.throws(() => loadGroupKey(gk), { code: 'ERR_KEY_PERMS' });
    const junk = join(dir, 'junk.pub');
    writeFileSync(junk, 'hello\n');
    assert.throws(() => loadPublicKey(junk), { code: 'ERR_KEY_FILE' });
    assert.throws(() => loadPublicKey(join(dir, 'missing.pub')), { code: 'ERR_STORAGE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('device state: starts at 0, commit persists across reopen, refuses going back, corrupt file fails closed', () => {
  const dir = tmp();
  try {
    const { trust, signer } = hierarchy();
    const s = DeviceState.open(dir, 'sensor-v2');
    assert.equal(s.installedSequence, 0n);
    const m7 = verifyManifest(signManifest(release(7n, { created: T0 - 5 }).fields, signer), trust, s.policy(), T0);
    s.commit(m7);
    const again = DeviceState.open(dir, 'sensor-v2');
    assert.equal(again.installedSequence, 7n);
    assert.equal(again.timeFloor, T0 - 5);
    assert.equal(statSync(again.path).mode & 0o777, 0o600);
    assert.throws(() => again.commit(m7), { code: 'ERR_ROLLBACK' });
    assert.throws(() => verifyManifest(m7.bytes, trust, again.policy(), T0), { code: 'ERR_ROLLBACK' });
    assert.throws(() => DeviceState.open(dir, 'other-product'), { code: 'ERR_STATE_PRODUCT' });
    // Someone edits the sequence down by hand: checksum fails, the device refuses to guess.
    const text = readFileSync(again.path, 'utf8').replace('"installedSequence":"7"', '"installedSequence":"1"');
    writeFileSync(again.path, text);
    assert.throws(() => DeviceState.open(dir, 'sensor-v2'), { code: 'ERR_STATE_CORRUPT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packet auth: nonces never repeat within an instance; wrong object, suite or key fails; tamper anywhere fails', () => {
  const gk = generateGroupKey();
  const obj = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  for (const suite of ['mac', 'aes-256-gcm', 'chacha20-poly1305'] as AuthSuite[]) {
    const a = new PacketAuth(gk, obj, suite);
    const header = new Uint8Array(16).fill(3);
    const body = new Uint8Array(1184).fill(9);
    const nonces = new Set<string>();
    let last: { payload: Uint8Array; trailer: Uint8Array } | undefined;
    for (let i = 0; i < 1000; i++) {
      last = a.seal(header, body);
      nonces.add(toHex(last.trailer.subarray(0, 12)));
    }
    const s = last!;
    if (suite !== 'mac') {
      assert.equal(nonces.size, 1000, 'distinct nonces');
      assert.notDeepEqual(s.payload, body, 'body encrypted');
    }
    const rx = new PacketAuth(gk, obj, suite);
    assert.deepEqual(rx.open(header, s.payload, s.trailer), body);
    assert.equal(new PacketAuth(gk, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 9), suite).open(header, s.payload, s.trailer), null, 'other object');
    assert.equal(new PacketAuth(generateGroupKey(), obj, suite).open(header, s.payload, s.trailer), null, 'other key');
    const h2 = header.slice();
    h2[3] = 4;
    assert.equal(rx.open(h2, s.payload, s.trailer), null, 'header is authenticated');
    const p2 = s.payload.slice();
    p2[1000] = (p2[1000] as number) ^ 1;
    assert.equal(rx.open(header, p2, s.trailer), null, 'payload is authenticated');
    const t2 = s.trailer.slice();
    t2[t2.length - 1] = (t2[t2.length - 1] as number) ^ 1;
    assert.equal(rx.open(header, s.payload, t2), null, 'tag');
    assert.equal(rx.open(header, s.payload, s.trailer.subarray(1)), null, 'short trailer');
  }
  // MAC and AEAD keys differ (suite byte in the HKDF info): a MAC tag is no AEAD tag and vice versa.
  assert.equal(new PacketAuth(gk, obj, 'chacha20-poly1305').open(new Uint8Array(4), new Uint8Array(4), new Uint8Array(28)), null);
  assert.equal(toHex(groupKeyIdOf(gk)).length, 16);
});

test('device state under power loss: a leftover temp file is ignored, a torn state file is refused', () => {
  const dir = tmp();
  try {
    const { trust, signer } = hierarchy();
    const s = DeviceState.open(dir, 'sensor-v2');
    s.commit(verifyManifest(signManifest(release(5n).fields, signer), trust, s.policy(), T0));
    // Power lost after writing the temp file of the next commit, before the rename.
    writeFileSync(join(dir, '.iotupd-state.json.tmp-999'), '{"version":1,"product":"sensor-v2","installedSequence":"1"');
    assert.equal(DeviceState.open(dir, 'sensor-v2').installedSequence, 5n);
    // A state file cut short (not produced by our writer, which renames whole files): fail closed.
    const full = readFileSync(s.path, 'utf8');
    for (const n of [0, 10, full.length - 2]) {
      writeFileSync(s.path, full.slice(0, n));
      assert.throws(() => DeviceState.open(dir, 'sensor-v2'), { code: 'ERR_STATE_CORRUPT' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
