// ChaCha20-Poly1305 on WebAssembly (src/crypto/aead.ts): RFC 8439's test vectors (sections 2.4.2,
// 2.5.2, 2.8.2 and the Poly1305 edge cases of appendix A.3), then OpenSSL's chacha20-poly1305
// (node:crypto) as the reference on random keys, nonces, AAD and lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { ChaCha20Poly1305, poly1305 } from '../../src/crypto/aead.js';
import { prng } from './fixtures.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);

test('ChaCha20: RFC 8439 2.4.2 (the sunscreen text, counter 1)', () => {
  const key = new Uint8Array(32).map((_, i) => i);
  const data = SUNSCREEN.slice();
  new ChaCha20Poly1305(key).xorKeystream(hex('000000000000004a00000000'), 1, data);
  assert.equal(
    toHex(data),
    '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357' +
      '1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365a' +
      'f90bbf74a35be6b40b8eedf2785e42874d',
  );
});

test('Poly1305: RFC 8439 2.5.2 and the appendix A.3 edge cases (h >= p, carries, the s half)', () => {
  const vectors: [string, string, string][] = [
    ['85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', Buffer.from('Cryptographic Forum Research Group').toString('hex'), 'a8061dc1305136c6c22b8baf0c0127a9'],
    ['0'.repeat(64), '0'.repeat(128), '0'.repeat(32)],
    ['02' + '0'.repeat(62), 'ff'.repeat(16), '03' + '0'.repeat(30)],
    ['02' + '0'.repeat(30) + 'ff'.repeat(16), '02' + '0'.repeat(30), '03' + '0'.repeat(30)],
    ['01' + '0'.repeat(62), 'ff'.repeat(16) + 'f0' + 'ff'.repeat(15) + '11' + '0'.repeat(30), '05' + '0'.repeat(30)],
    ['01' + '0'.repeat(62), 'ff'.repeat(16) + 'fb' + 'fe'.repeat(15) + '01'.repeat(16), '0'.repeat(32)],
    ['02' + '0'.repeat(62), 'fd' + 'ff'.repeat(15), 'fa' + 'ff'.repeat(15)],
    [
      '0100000000000000040000000000000000000000000000000000000000000000',
      'e33594d7505e43b900000000000000003394d7505e4379cd01000000000000000000000000000000000000000000000001000000000000000000000000000000',
      '14000000000000005500000000000000',
    ],
  ];
  for (const [key, msg, tag] of vectors) assert.equal(toHex(poly1305(hex(key), hex(msg))), tag, `key ${key}`);
});

test('AEAD: RFC 8439 2.8.2 seals the sunscreen text to the published ciphertext and tag, and opens it', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('070000004041424344454647');
  const aad = hex('50515253c0c1c2c3c4c5c6c7');
  const body = SUNSCREEN.slice();
  const tag = new Uint8Array(16);
  const aead = new ChaCha20Poly1305(key);
  aead.seal(nonce, aad, body, tag);
  assert.equal(
    toHex(body),
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
      '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
      '3ff4def08e4b7a9de576d26586cec64b6116',
  );
  assert.equal(toHex(tag), '1ae10b594f09e26a7e902ecbd0600691');
  assert.ok(aead.open(nonce, aad, body, tag));
  assert.deepEqual(body, SUNSCREEN);
});

test('the module memory grows for large inputs, and sealing keeps working after xorKeystream grew it', () => {
  const key = new Uint8Array(32).fill(3);
  const nonce = new Uint8Array(12).fill(4);
  const a = new ChaCha20Poly1305(key);
  const big = new Uint8Array(300_000).fill(1);
  a.xorKeystream(nonce, 1, big);
  const body = new Uint8Array(200_000).fill(2);
  const tag = new Uint8Array(16);
  a.seal(nonce, new Uint8Array(5), body, tag);
  const ref = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  ref.setAAD(new Uint8Array(5), { plaintextLength: body.length });
  const ct = Buffer.concat([ref.update(new Uint8Array(200_000).fill(2)), ref.final()]);
  assert.equal(toHex(tag), ref.getAuthTag().toString('hex'));
  assert.ok(Buffer.from(body).equals(ct));
});

test('AEAD: same ciphertext and tag as OpenSSL on random inputs; every single-bit change is refused', () => {
  const rnd = prng(41);
  for (let round = 0; round < 300; round++) {
    // Uint8Array copies: Buffer#slice would share memory, and flip() below must copy.
    const key = new Uint8Array(randomBytes(32));
    const nonce = new Uint8Array(randomBytes(12));
    const aad = new Uint8Array(randomBytes(rnd() % 70));
    // Short, block-boundary and datagram sizes, and one larger than the instance's initial memory.
    const len = round === 0 ? 70_000 : ([0, 1, 15, 16, 17, 63, 64, 255, 256, 257, 1184, 1404][round % 16] ?? rnd() % 3000);
    const plain = randomBytes(len);
    const ref = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    ref.setAAD(aad, { plaintextLength: len });
    const refCt = Buffer.concat([ref.update(plain), ref.final()]);
    const refTag = ref.getAuthTag();
    const aead = new ChaCha20Poly1305(key);
    const body = new Uint8Array(plain);
    const tag = new Uint8Array(16);
    aead.seal(nonce, aad, body, tag);
    assert.equal(toHex(body), refCt.toString('hex'), `ciphertext, ${len} bytes`);
    assert.equal(toHex(tag), refTag.toString('hex'), `tag, ${len} bytes, aad ${aad.length}`);
    const flip = (b: Uint8Array, i: number) => {
      const c = b.slice();
      c[i % c.length] = (c[i % c.length] as number) ^ (1 << (i % 8));
      return c;
    };
    if (len > 0) {
      const ct = flip(body, round * 7);
      assert.equal(aead.open(nonce, aad, ct, tag), false);
      assert.deepEqual(ct, flip(body, round * 7), 'a refused body is left untouched');
    }
    if (aad.length > 0) assert.equal(aead.open(nonce, flip(aad, round), body.slice(), tag), false);
    assert.equal(aead.open(flip(nonce, round), aad, body.slice(), tag), false);
    assert.equal(aead.open(nonce, aad, body.slice(), flip(tag, round)), false);
    const opened = body.slice();
    assert.ok(aead.open(nonce, aad, opened, tag));
    assert.deepEqual(opened, new Uint8Array(plain));
  }
});
