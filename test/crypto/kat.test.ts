// Known-answer vectors from outside: RFC 8032 (Ed25519), McGrew-Viega GCM test cases 13/14
// (AES-256-GCM), RFC 8439 2.8.2 (ChaCha20-Poly1305), RFC 5869 A.1 (HKDF-SHA256), RFC 4231 4.3
// (HMAC-SHA256), pushed through the same code paths src/crypto uses; and OpenSSL as an independent
// implementation reading our key files and producing the same Ed25519 signature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, hkdfSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import {
  ed25519Sign,
  ed25519Verify,
  formatPrivateKeyFile,
  keyIdOf,
  parsePublicKeyFile,
  privateKeyFromSeed,
  publicKeyObject,
  rawPublicKey,
  saveKeyPair,
  signingKeyFrom,
} from '../../src/crypto/keys.js';
import { deriveObjectKey, PacketAuth } from '../../src/crypto/packet-auth.js';
import { createPublicKey } from 'node:crypto';

const RFC8032 = [
  {
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

test('Ed25519 RFC 8032 section 7.1 tests 1 and 2 through our key handling', () => {
  for (const v of RFC8032) {
    const sk = privateKeyFromSeed(fromHex(v.secret));
    const pub = rawPublicKey(createPublicKey(sk));
    assert.equal(toHex(pub), v.public);
    const sig = ed25519Sign(sk, fromHex(v.message));
    assert.equal(toHex(sig), v.signature);
    const pk = publicKeyObject(fromHex(v.public));
    assert.equal(ed25519Verify(pk, fromHex(v.message), fromHex(v.signature)), true);
    const bad = fromHex(v.signature);
    bad[0] = (bad[0] as number) ^ 1;
    assert.equal(ed25519Verify(pk, fromHex(v.message), bad), false);
    assert.equal(ed25519Verify(pk, fromHex(v.message), bad.subarray(1)), false);
    // Key id = first 8 bytes of SHA-256(raw public key).
    assert.equal(keyIdOf(pub).length, 8);
  }
});

test('OpenSSL reads our key files and signs identically (Ed25519 is deterministic)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-kat-'));
  try {
    const key = signingKeyFrom(privateKeyFromSeed(fromHex(RFC8032[1]!.secret)));
    const { keyFile, pubFile } = saveKeyPair(join(dir, 'k'), key);
    const msgFile = join(dir, 'msg');
    writeFileSync(msgFile, Buffer.from('iotupd known answer'));
    const sig = execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', keyFile, '-rawin', '-in', msgFile]);
    assert.equal(toHex(new Uint8Array(sig)), toHex(ed25519Sign(key.privateKey, new TextEncoder().encode('iotupd known answer'))));
    const pubPem = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout'], { encoding: 'utf8' });
    assert.equal(toHex(parsePublicKeyFile(pubPem).publicKey), RFC8032[1]!.public);
    assert.equal(toHex(parsePublicKeyFile(readFileSync(pubFile, 'utf8')).publicKey), RFC8032[1]!.public);
    assert.match(formatPrivateKeyFile(key), /-----BEGIN PRIVATE KEY-----/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('AES-256-GCM: McGrew-Viega test cases 13 and 14', () => {
  const key = new Uint8Array(32);
  const iv = new Uint8Array(12);
  const c13 = createCipheriv('aes-256-gcm', key, iv);
  c13.final();
  assert.equal(c13.getAuthTag().toString('hex'), '530f8afbc74536b9a963b4f1c4cb738b');
  const c14 = createCipheriv('aes-256-gcm', key, iv);
  const ct = c14.update(new Uint8Array(16));
  c14.final();
  assert.equal(ct.toString('hex'), 'cea7403d4d606b6e074ec5d3baf39d18');
  assert.equal(c14.getAuthTag().toString('hex'), 'd0d1c8a799996bf0265b98b5d48ab919');
});

test('ChaCha20-Poly1305: RFC 8439 section 2.8.2', () => {
  const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = fromHex('070000004041424344454647');
  const aad = fromHex('50515253c0c1c2c3c4c5c6c7');
  const pt = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = c.update(pt);
  c.final();
  assert.equal(ct.subarray(0, 16).toString('hex'), 'd31a8d34648e60db7b86afbc53ef7ec2');
  assert.equal(c.getAuthTag().toString('hex'), '1ae10b594f09e26a7e902ecbd0600691');
});

test('HKDF-SHA256 RFC 5869 A.1 and HMAC-SHA256 RFC 4231 4.3', () => {
  const okm = hkdfSync('sha256', new Uint8Array(22).fill(0x0b), fromHex('000102030405060708090a0b0c'), fromHex('f0f1f2f3f4f5f6f7f8f9'), 42);
  assert.equal(Buffer.from(okm).toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  assert.equal(
    createHmac('sha256', 'Jefe').update('what do ya want for nothing?').digest('hex'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
});

test('PacketAuth trailer layout equals an independent computation with the derived key', () => {
  const groupKey = new Uint8Array(32).fill(7);
  const objectId = fromHex('0102030405060708');
  const header = new Uint8Array(16).fill(0xaa);
  const body = new Uint8Array(100).map((_, i) => i);
  // MAC suite: HMAC-SHA256(K_obj, header || body), first 16 bytes.
  const mac = new PacketAuth(groupKey, objectId, 'mac');
  const sealed = mac.seal(header, body);
  const expectTag = createHmac('sha256', deriveObjectKey(groupKey, objectId, 'mac')).update(header).update(body).digest().subarray(0, 16);
  assert.equal(toHex(sealed.trailer), toHex(expectTag));
  assert.equal(toHex(sealed.payload), toHex(body));
  // AEAD suite: nonce = salt || counter, AES-256-GCM(K_obj, nonce, aad = header, body).
  const salt = fromHex('1112131415161718');
  const aead = new PacketAuth(groupKey, objectId, 'aes-256-gcm', { nonceSalt: salt });
  aead.seal(header, body); // counter 0
  const s1 = aead.seal(header, body); // counter 1
  const nonce = fromHex('111213141516171800000001');
  const c = createCipheriv('aes-256-gcm', deriveObjectKey(groupKey, objectId, 'aes-256-gcm'), nonce);
  c.setAAD(header);
  const ct = c.update(body);
  c.final();
  assert.equal(toHex(s1.payload), toHex(new Uint8Array(ct)));
  assert.equal(toHex(s1.trailer), toHex(nonce) + c.getAuthTag().toString('hex'));
  // ChaCha20-Poly1305 (sealed on WebAssembly, aead.ts) against OpenSSL, same layout; and opened.
  const cc = new PacketAuth(groupKey, objectId, 'chacha20-poly1305', { nonceSalt: salt });
  const s2 = cc.seal(header, body); // counter 0
  const ref = createCipheriv('chacha20-poly1305', deriveObjectKey(groupKey, objectId, 'chacha20-poly1305'), fromHex('111213141516171800000000'), { authTagLength: 16 });
  ref.setAAD(header, { plaintextLength: body.length });
  const refCt = ref.update(body);
  ref.final();
  assert.equal(toHex(s2.payload), toHex(new Uint8Array(refCt)));
  assert.equal(toHex(s2.trailer), '111213141516171800000000' + ref.getAuthTag().toString('hex'));
  assert.deepEqual(new PacketAuth(groupKey, objectId, 'chacha20-poly1305').open(header, s2.payload, s2.trailer), body);
  // Poly1305 tags: the same AEAD with an empty plaintext, header and body as AAD.
  const pm = new PacketAuth(groupKey, objectId, 'poly1305', { nonceSalt: salt });
  const s3 = pm.seal(header, body);
  const refMac = createCipheriv('chacha20-poly1305', deriveObjectKey(groupKey, objectId, 'poly1305'), fromHex('111213141516171800000000'), { authTagLength: 16 });
  refMac.setAAD(Buffer.concat([header, body]), { plaintextLength: 0 });
  refMac.final();
  assert.equal(toHex(s3.payload), toHex(body), 'not encrypted');
  assert.equal(toHex(s3.trailer), '111213141516171800000000' + refMac.getAuthTag().toString('hex'));
  const tampered = s3.payload.slice();
  tampered[5] = (tampered[5] as number) ^ 1;
  assert.equal(new PacketAuth(groupKey, objectId, 'poly1305').open(header, tampered, s3.trailer), null);
  assert.deepEqual(new PacketAuth(groupKey, objectId, 'poly1305').open(header, s3.payload, s3.trailer), body);
  // node:crypto fallback (no WebAssembly): the same bytes, and each opens the other's packets.
  for (const suite of ['poly1305', 'chacha20-poly1305'] as const) {
    const w = new PacketAuth(groupKey, objectId, suite, { nonceSalt: salt });
    const n = new PacketAuth(groupKey, objectId, suite, { nonceSalt: salt, engine: 'node' });
    const a = w.seal(header, body);
    const b = n.seal(header, body);
    assert.equal(toHex(b.payload) + toHex(b.trailer), toHex(a.payload) + toHex(a.trailer), suite);
    assert.deepEqual(n.open(header, a.payload, a.trailer), body);
    assert.deepEqual(w.open(header, b.payload, b.trailer), body);
    const bad = b.trailer.slice();
    bad[20] = (bad[20] as number) ^ 1;
    assert.equal(n.open(header, b.payload, bad), null);
  }
});

test('PacketAuth MAC equals createHmac (RFC 2104) at every block boundary and beyond its scratch buffer', () => {
  const groupKey = new Uint8Array(32).map((_, i) => i * 7);
  const objectId = fromHex('a0a1a2a3a4a5a6a7');
  const mac = new PacketAuth(groupKey, objectId, 'mac');
  const key = deriveObjectKey(groupKey, objectId, 'mac');
  for (const n of [0, 1, 47, 48, 55, 56, 63, 64, 65, 119, 1184, 2031, 2032, 2048, 3000, 70000]) {
    const header = new Uint8Array(16).fill(n & 0xff);
    const body = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    const expect = createHmac('sha256', key).update(header).update(body).digest().subarray(0, 16);
    assert.equal(toHex(mac.seal(header, body).trailer), toHex(expect), `length ${n}`);
  }
});
