import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, ErrorCode } from '../../src/errors.js';
import { privateKeyFromSeed, rawPublicKey } from '../../src/crypto/keys.js';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { decode, encode, encodingLength, MAX_STATUS_BYTES, seal, StatusDecodeError, verify, type StatusBody, type StatusReport } from '../../src/wire/status.js';
import { prng } from '../support/prng.js';

// RFC 8032 section 7.1 TEST 1: seed and public key, so the key in the layout below is a known one.
const SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const PUB_HEX = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const priv = privateKeyFromSeed(SEED);

const BODY: StatusBody = {
  reason: 'change',
  counter: 0x0102030405060708n,
  time: 1_764_979_200_000,
  uptime: 3600,
  state: 'receiving',
  progress: 0.5,
  installedSequence: 41n,
  pendingSequence: 42n,
  publicKey: rawPublicKey(createPublicKey(priv)),
  deviceId: 'dev-1',
  product: 'sensor',
  deviceClass: 'v2',
  installedVersion: '1.0',
  pendingVersion: '1.1',
  agentVersion: '0.1.0',
};

// Written out by hand from the diagram in src/wire/status.ts, not produced by the encoder.
const LAYOUT_HEX =
  '49555354' + // magic IUST
  '01' + // version
  '01' + // reason change
  '02' + // state receiving
  '03' + // flags: progress, pending
  '0102030405060708' + // counter
  (1_764_979_200_000).toString(16).padStart(16, '0') + // time ms
  '00000e10' + // uptime 3600
  '1388' + // progress 5000 / 10000
  '0000000000000029' + // installed 41
  '000000000000002a' + // pending 42
  PUB_HEX +
  '05' + Buffer.from('dev-1').toString('hex') +
  '06' + Buffer.from('sensor').toString('hex') +
  '02' + Buffer.from('v2').toString('hex') +
  '03' + Buffer.from('1.0').toString('hex') +
  '03' + Buffer.from('1.1').toString('hex') +
  '05' + Buffer.from('0.1.0').toString('hex') +
  '00'; // no last error

test('layout: the signed body matches the byte diagram, the signature verifies with the RFC 8032 key', () => {
  assert.equal(Buffer.from(BODY.publicKey).toString('hex'), PUB_HEX);
  const bytes = seal(BODY, priv);
  assert.equal(bytes.length, encodingLength(BODY));
  assert.equal(Buffer.from(bytes.subarray(0, bytes.length - 64)).toString('hex'), LAYOUT_HEX);
  assert.equal(bytes.length, LAYOUT_HEX.length / 2 + 64);
  assert.ok(verify(bytes, BODY.publicKey));
  const r = decode(bytes);
  assert.equal(r.deviceId, 'dev-1');
  assert.equal(r.progress, 0.5);
  assert.equal(r.pendingSequence, 42n);
  assert.equal(r.lastError, undefined);
});

test('round trip at an offset inside a larger buffer', () => {
  const signed = decode(seal({ ...BODY, lastError: 'disk full: ünïcödé', progress: undefined, reason: 'heartbeat', state: 'failed' }, priv));
  const buf = new Uint8Array(1000).fill(0xee);
  const view = encode(signed, buf, 123);
  assert.equal(view.byteOffset, 123);
  assert.equal(buf[122], 0xee);
  assert.equal(buf[123 + view.length], 0xee);
  const back = decode(buf, 123, view.length);
  assert.deepEqual(back, signed);
  assert.equal(back.lastError, 'disk full: ünïcödé');
  assert.equal(back.progress, undefined);
  assert.ok(verify(buf.subarray(123, 123 + view.length), BODY.publicKey));
});

test('a report of maximal size is exactly MAX_STATUS_BYTES; one byte more in any field is refused', () => {
  const big: StatusBody = {
    ...BODY,
    deviceId: 'd'.repeat(64),
    product: 'p'.repeat(64),
    deviceClass: 'c'.repeat(64),
    installedVersion: 'v'.repeat(64),
    pendingVersion: 'w'.repeat(64),
    agentVersion: 'a'.repeat(32),
    lastError: 'e'.repeat(160),
  };
  assert.equal(encodingLength(big), MAX_STATUS_BYTES);
  assert.equal(decode(seal(big, priv)).lastError?.length, 160);
  assert.throws(() => seal({ ...big, agentVersion: 'a'.repeat(33) }, priv), RangeError);
  assert.throws(() => seal({ ...BODY, deviceId: '' }, priv), RangeError);
});

test('signature: any flipped bit fails verification; another key fails', () => {
  const bytes = seal(BODY, priv);
  const rnd = prng(7);
  for (let i = 0; i < 200; i++) {
    const c = bytes.slice();
    const at = Math.floor(rnd() * c.length);
    c[at] = (c[at] as number) ^ (1 << Math.floor(rnd() * 8));
    assert.equal(verify(c, BODY.publicKey), false, `bit flip at ${at} verified`);
  }
  const other = rawPublicKey(generateKeyPairSync('ed25519').publicKey);
  assert.equal(verify(bytes, other), false);
});

test('hostile input: each fault is a StatusDecodeError with its fault name, never another exception', () => {
  const good = seal(BODY, priv);
  const cases: [string, Uint8Array][] = [
    ['short', good.subarray(0, 40)],
    ['short', good.subarray(0, good.length - 1)],
    ['oversized', new Uint8Array(MAX_STATUS_BYTES + 1)],
    ['magic', Uint8Array.from(good, (b, i) => (i === 0 ? 0x00 : b))],
    ['version', Uint8Array.from(good, (b, i) => (i === 4 ? 2 : b))],
    ['reason', Uint8Array.from(good, (b, i) => (i === 5 ? 3 : b))],
    ['state', Uint8Array.from(good, (b, i) => (i === 6 ? 10 : b))],
    ['flags', Uint8Array.from(good, (b, i) => (i === 7 ? 0x07 : b))],
    ['progress', Uint8Array.from(good, (b, i) => (i === 28 ? 0x27 : i === 29 ? 0x11 : b))],
    ['field', Uint8Array.from(good, (b, i) => (i === 78 ? 65 : b))],
    ['trailing', Uint8Array.from([...good.subarray(0, good.length - 64), 0, ...good.subarray(good.length - 64)])],
    ['utf8', Uint8Array.from(good, (b, i) => (i === 79 ? 0xff : b))],
  ];
  for (const [fault, bytes] of cases) {
    assert.throws(
      () => decode(bytes),
      (e: unknown) => e instanceof StatusDecodeError && e instanceof DecodeError && e.fault === fault && e.code === ErrorCode.DECODE_STATUS,
      `expected fault ${fault}`,
    );
  }
  // Random garbage and random truncations/mutations of a good report: only StatusDecodeError.
  const rnd = prng(11);
  let decoded = 0;
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rnd() * (MAX_STATUS_BYTES + 20));
    const b = i % 2 === 0 ? Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256)) : good.slice(0, Math.min(good.length, len));
    if (i % 3 === 0 && b.length > 8) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    try {
      const r: StatusReport = decode(b);
      decoded += 1;
      assert.ok(r.deviceId.length > 0);
    } catch (e) {
      assert.ok(e instanceof StatusDecodeError, `unexpected ${String(e)}`);
    }
  }
  assert.ok(decoded < 3000);
});
