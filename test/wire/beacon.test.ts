import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import {
  BeaconDecodeError,
  decode,
  decodeDatagram,
  encode,
  encodingLength,
  MAX_BEACON,
  signingInput,
  type AnnounceBeacon,
  type HaltBeacon,
  type StateBeacon,
} from '../../src/wire/beacon.js';
import { signBeacon } from '../../src/announce/sign.js';
import { privateKeyFromSeed, signingKeyFrom } from '../../src/crypto/keys.js';
import { DecodeError } from '../../src/errors.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const str = (s: string): number[] => [...Buffer.from(s, 'utf8')];
const u64 = (v: bigint): number[] => [...hex(v.toString(16).padStart(16, '0'))];

const MANIFEST_ID = Uint8Array.from({ length: 32 }, (_, i) => i);
const KEY_ID = hex('0102030405060708');
const SIG = new Uint8Array(64).fill(0xab);
const CERT = Uint8Array.from([0xc0, 0xc1, 0xc2]);

const ANNOUNCE: AnnounceBeacon = {
  kind: 'announce',
  signerKeyId: KEY_ID,
  chain: [CERT],
  counter: 0x0102030405060708n,
  issuedAt: 1_790_000_000,
  expires: 1_790_000_600,
  product: 'sensor-v2',
  sequence: 42n,
  manifestId: MANIFEST_ID,
  version: '1.4.2',
  objectId: hex('a1a2a3a4a5a6a7a8'),
  size: 1_048_576,
  group: 'ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf',
  port: 4242,
  dataTimeout: 60,
  channel: 'x',
  signature: SIG,
};

// Written out field by field from the layout in src/wire/beacon.ts, not by the encoder.
const ANNOUNCE_BYTES = Uint8Array.from([
  0x49, 0x4f, 0x54, 0x42, // "IOTB"
  0x01, 0x01, // version 1, kind ANNOUNCE
  0x00, 0xcf, // total length 207
  ...KEY_ID,
  0x01, 0x00, 0x03, 0xc0, 0xc1, 0xc2, // one certificate of 3 bytes
  ...u64(0x0102030405060708n), // counter
  ...u64(1_790_000_000n), // issued-at
  ...u64(1_790_000_600n), // expires
  9, ...str('sensor-v2'),
  ...u64(42n),
  ...MANIFEST_ID,
  5, ...str('1.4.2'),
  8, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
  ...u64(1_048_576n),
  ...hex('ff1e740d6e6fefbd2c22da0f912691bf'),
  0x10, 0x92, // port 4242
  0x00, 0x00, 0x00, 0x3c, // data timeout 60 s
  1, ...str('x'),
  ...SIG,
]);

const HALT: HaltBeacon = {
  kind: 'halt',
  signerKeyId: KEY_ID,
  chain: [],
  counter: 7n,
  issuedAt: 1000,
  expires: 2000,
  product: 'p',
  sequence: 3n,
  manifestId: MANIFEST_ID,
  rollback: true,
  signature: SIG,
};

const HALT_BYTES = Uint8Array.from([
  0x49, 0x4f, 0x54, 0x42, 0x01, 0x02, // kind HALT
  0x00, 0x94, // 148
  ...KEY_ID,
  0x00, // no chain
  ...u64(7n), ...u64(1000n), ...u64(2000n),
  1, ...str('p'),
  ...u64(3n),
  ...MANIFEST_ID,
  0x01, // roll back
  ...SIG,
]);

const STATE: StateBeacon = {
  kind: 'state',
  signerKeyId: KEY_ID,
  chain: [],
  counter: 9n,
  issuedAt: 1000,
  expires: 1600,
  product: 'p',
  sequence: 3n,
  manifestId: MANIFEST_ID,
  state: 'paused',
  version: '2.0',
  demand: { live: 7, needing: 0, received: 5, waiting: 1, outside: 1, gaveUp: 0x01020304 },
  reason: 'no one',
  signature: SIG,
};

const STATE_BYTES = Uint8Array.from([
  0x49, 0x4f, 0x54, 0x42, 0x01, 0x03, // kind STATE
  0x00, 0xb7, // 183
  ...KEY_ID,
  0x00, // no chain
  ...u64(9n), ...u64(1000n), ...u64(1600n),
  1, ...str('p'),
  ...u64(3n),
  ...MANIFEST_ID,
  0x01, // paused
  3, ...str('2.0'),
  0, 0, 0, 7, // live
  0, 0, 0, 0, // needing
  0, 0, 0, 5, // received
  0, 0, 0, 1, // waiting
  0, 0, 0, 1, // outside
  1, 2, 3, 4, // gave up
  6, ...str('no one'),
  ...SIG,
]);

test('known answer: STATE layout written by hand', () => {
  assert.equal(STATE_BYTES.length, 183);
  assert.deepEqual(encode(STATE), STATE_BYTES);
  const d = decodeDatagram(STATE_BYTES) as StateBeacon;
  assert.equal(d.kind, 'state');
  assert.equal(d.state, 'paused');
  assert.deepEqual(d.demand, STATE.demand);
  assert.equal(d.reason, 'no one');
  const serving = encode({ ...STATE, state: 'serving' });
  assert.equal(serving[17 + 24 + 2 + 8 + 32], 0);
  // An unknown state byte, an over-long reason and a count beyond u32 are refused.
  const bad = new Uint8Array(STATE_BYTES);
  bad[17 + 24 + 2 + 8 + 32] = 2;
  assert.throws(() => decodeDatagram(bad), (e: unknown) => e instanceof BeaconDecodeError && e.fault === 'field');
  assert.throws(() => encode({ ...STATE, reason: 'x'.repeat(201) }), BeaconDecodeError);
  assert.throws(() => encode({ ...STATE, demand: { ...STATE.demand, live: 2 ** 32 } }), BeaconDecodeError);
});

test('known answer: ANNOUNCE layout written by hand', () => {
  assert.equal(ANNOUNCE_BYTES.length, 207);
  assert.equal(encodingLength(ANNOUNCE), 207);
  assert.deepEqual(encode(ANNOUNCE), ANNOUNCE_BYTES);
  const d = decodeDatagram(ANNOUNCE_BYTES);
  assert.equal(d.kind, 'announce');
  assert.deepEqual({ ...d, chain: d.chain.map((c) => [...c]) }, { ...ANNOUNCE, chain: [[0xc0, 0xc1, 0xc2]] });
});

test('known answer: HALT layout written by hand', () => {
  assert.equal(HALT_BYTES.length, 148);
  assert.deepEqual(encode(HALT), HALT_BYTES);
  const d = decodeDatagram(HALT_BYTES);
  assert.equal(d.kind, 'halt');
  assert.equal((d as HaltBeacon).rollback, true);
  assert.equal(d.sequence, 3n);
  const noRollback = encode({ ...HALT, rollback: false });
  assert.equal(noRollback[noRollback.length - 65], 0);
  assert.equal((decode(noRollback) as HaltBeacon).rollback, false);
});

test('round trip at an offset inside a larger buffer; fields are views', () => {
  const buf = new Uint8Array(1000).fill(0xee);
  const w = encode(ANNOUNCE, buf, 300);
  assert.equal(w.byteOffset, 300);
  assert.equal(buf[299], 0xee);
  assert.equal(buf[300 + 207], 0xee);
  const d = decode(buf, 300) as AnnounceBeacon;
  assert.equal(d.group, ANNOUNCE.group);
  assert.deepEqual([...d.signature], [...SIG]);
  assert.throws(() => decodeDatagram(buf.subarray(300, 300 + 208)), (e: unknown) => e instanceof BeaconDecodeError && e.fault === 'trailing');
  assert.throws(() => encode(ANNOUNCE, new Uint8Array(206)), RangeError);
});

// RFC 8032 section 7.1 TEST 1 key: Ed25519 is deterministic, so the whole signed beacon is fixed.
const RFC8032_SEED = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const RFC8032_PUB = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
// Pinned output (Ed25519 is deterministic); the test below also checks it with node:crypto directly.
const SIGNED_KAT_SIGNATURE =
  '1bb84e930ca01dc403f74f973596c30ea9e0d073f8004320eadbe35b67ddb8bc07064568bb5237227400cd4e37595451298949ae94a9d75d1764db9a471b3301';

test('known answer: signed beacon with the RFC 8032 test 1 key, checked by node:crypto directly', () => {
  const key = signingKeyFrom(privateKeyFromSeed(RFC8032_SEED));
  assert.deepEqual(key.publicKey, RFC8032_PUB);
  const { signature: _s, signerKeyId: _k, chain: _c, ...content } = ANNOUNCE;
  const bytes = signBeacon(content, key);
  assert.equal(bytes.length, 207 - 5); // no certificate: 202 bytes
  assert.deepEqual(bytes.subarray(8, 16), key.keyId);
  assert.equal(
    Buffer.from(bytes.subarray(bytes.length - 64)).toString('hex'),
    SIGNED_KAT_SIGNATURE,
    'signature of the fixed beacon by the RFC 8032 key',
  );
  const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), RFC8032_PUB]), format: 'der', type: 'spki' });
  const ctx = Buffer.from('iotupd beacon v1\0');
  const body = bytes.subarray(0, bytes.length - 64);
  const sig = bytes.subarray(bytes.length - 64);
  assert.ok(verify(null, Buffer.concat([ctx, body]), spki, sig), 'signature over context || bytes before it');
  assert.deepEqual(signingInput(bytes), new Uint8Array(Buffer.concat([ctx, body])));
  // Domain separation: the same signature does not verify as a manifest signature over the same bytes.
  assert.equal(verify(null, Buffer.concat([Buffer.from('iotupd manifest v1\0'), body]), spki, sig), false);
  assert.equal(verify(null, body, spki, sig), false);
});

test('every truncation is a DecodeError (never a crash, never a partial beacon)', () => {
  for (const bytes of [ANNOUNCE_BYTES, HALT_BYTES]) {
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeDatagram(bytes.subarray(0, n)), (e: unknown) => e instanceof BeaconDecodeError && e instanceof DecodeError, `length ${n}`);
    }
  }
});

test('malformed fields are refused with a fault', () => {
  const cases: [string, (b: Uint8Array) => void, string][] = [
    ['magic', (b) => (b[0] = 0x4a), 'magic'],
    ['version', (b) => (b[4] = 2), 'version'],
    ['kind 0', (b) => (b[5] = 0), 'kind'],
    ['kind 4', (b) => (b[5] = 4), 'kind'],
    ['length over the cap', (b) => new DataView(b.buffer).setUint16(6, MAX_BEACON + 1), 'length'],
    ['length beyond the datagram', (b) => new DataView(b.buffer).setUint16(6, 208), 'length'],
    ['chain of 5', (b) => (b[16] = 5), 'chain'],
    ['empty product', (b) => (b[17 + 5 + 24] = 0), 'field'],
    ['sequence 0', (b) => b.fill(0, 17 + 5 + 24 + 10, 17 + 5 + 24 + 18), 'field'],
    ['expires before issued-at', (b) => b.fill(0, 17 + 5 + 16, 17 + 5 + 24), 'field'],
    ['unicast data group', (b) => (b[ANNOUNCE_BYTES.length - 64 - 2 - 4 - 2 - 16] = 0x20), 'field'],
    ['data port 0', (b) => b.fill(0, 207 - 64 - 2 - 4 - 2, 207 - 64 - 2 - 4), 'field'],
    ['data timeout 0', (b) => b.fill(0, 207 - 64 - 2 - 4, 207 - 64 - 2), 'field'],
    ['invalid UTF-8 product', (b) => (b[17 + 5 + 24 + 1] = 0xff), 'field'],
  ];
  for (const [name, mutate, fault] of cases) {
    const b = ANNOUNCE_BYTES.slice();
    mutate(b);
    assert.throws(() => decodeDatagram(b), (e: unknown) => e instanceof BeaconDecodeError && e.fault === fault, name);
  }
  const halt = HALT_BYTES.slice();
  halt[halt.length - 65] = 0x03;
  assert.throws(() => decodeDatagram(halt), (e: unknown) => e instanceof BeaconDecodeError && e.fault === 'field', 'unknown halt flag');
  // A body one byte longer than its kind needs (length field grown, signature moved) is 'trailing'.
  const longer = new Uint8Array(HALT_BYTES.length + 1);
  longer.set(HALT_BYTES.subarray(0, HALT_BYTES.length - 64));
  longer.set(SIG, HALT_BYTES.length - 63);
  new DataView(longer.buffer).setUint16(6, longer.length);
  assert.throws(() => decodeDatagram(longer), (e: unknown) => e instanceof BeaconDecodeError && e.fault === 'trailing');
});

test('size cap: a beacon must fit one 1280-byte IPv6 packet', () => {
  const big = { ...ANNOUNCE, chain: [new Uint8Array(500), new Uint8Array(500), new Uint8Array(200)] };
  assert.ok(encodingLength({ ...big, chain: big.chain.slice(0, 2) }) <= MAX_BEACON);
  assert.throws(() => encode(big), (e: unknown) => e instanceof BeaconDecodeError && e.fault === 'length');
  assert.throws(() => encode({ ...ANNOUNCE, product: 'p'.repeat(65) }), BeaconDecodeError);
  assert.throws(() => encode({ ...ANNOUNCE, group: 'fe80::1' }), BeaconDecodeError);
  assert.throws(() => encode({ ...ANNOUNCE, expires: ANNOUNCE.issuedAt }), BeaconDecodeError);
  assert.throws(() => encode({ ...ANNOUNCE, sequence: 0n }), BeaconDecodeError);
  // The longest legal fields still fit.
  const longest: AnnounceBeacon = { ...ANNOUNCE, product: 'p'.repeat(64), version: 'v'.repeat(64), objectId: new Uint8Array(32), channel: 'c'.repeat(255), chain: [new Uint8Array(160)] };
  const n = encodingLength(longest);
  assert.ok(n <= MAX_BEACON, `${n}`);
  assert.deepEqual(decodeDatagram(encode(longest)).product, 'p'.repeat(64));
});
