import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blake3 } from '@noble/hashes/blake3.js';
import {
  CHUNK_SIZE,
  FRAME_SIZE,
  FrameDecodeError,
  MAX_FILE_SIZE,
  decode,
  encode,
  encodingLength,
  type IotupdFrame,
} from '../../src/wire/iotupd-frame.js';
import { DecodeError } from '../../src/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

// BLAKE3("abc"), the published test vector (BLAKE3 reference implementation README / b3sum).
const ABC_HASH = '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85';

test('BLAKE3 of "abc" matches the published vector (the hash the frame carries)', () => {
  assert.equal(hex(blake3(new TextEncoder().encode('abc'))), ABC_HASH);
  assert.equal(hex(blake3.create().update(new TextEncoder().encode('ab')).update(new TextEncoder().encode('c')).digest()), ABC_HASH);
});

test('encodes the last chunk of a 4000-byte file byte-for-byte as the packed C struct', () => {
  // size 4000: chunks at 0, 1194, 2388, 3582; the last one holds 418 bytes (0x01a2).
  const data = new Uint8Array(418).map((_, i) => (i * 7 + 3) & 0xff);
  const frame: IotupdFrame = { seq: 0xbeef, size: 4000, offset: 3582, hash: fromHex(ABC_HASH), data };
  const bytes = encode(frame);
  const expectedHeader =
    'beef' + // seq
    '0000000000000fa0' + // size 4000
    '0000000000000dfe' + // offset 3582
    '01a2' + // len 418
    ABC_HASH;
  assert.equal(bytes.length, 1246);
  assert.equal(hex(bytes.subarray(0, 52)), expectedHeader);
  assert.deepEqual(bytes.subarray(52, 52 + 418), data);
  assert.ok(bytes.subarray(52 + 418).every((b) => b === 0), 'padding is zeroed');
  assert.equal(encodingLength(frame), FRAME_SIZE);

  const back = decode(fromHex(expectedHeader + hex(data) + '00'.repeat(1194 - 418)));
  assert.equal(back.seq, 0xbeef);
  assert.equal(back.size, 4000);
  assert.equal(back.offset, 3582);
  assert.equal(hex(back.hash), ABC_HASH);
  assert.deepEqual(back.data, data);
});

test('round-trips at an offset inside a larger buffer and decodes without copying', () => {
  const buf = new Uint8Array(5000).fill(0xaa);
  const data = new Uint8Array(CHUNK_SIZE).map((_, i) => i & 0xff);
  const frame: IotupdFrame = { seq: 65535, size: 10 * CHUNK_SIZE + 5, offset: 9 * CHUNK_SIZE, hash: new Uint8Array(32).fill(9), data };
  const written = encode(frame, buf, 1001);
  assert.equal(written.byteOffset, 1001);
  assert.equal(buf[1000], 0xaa, 'byte before untouched');
  assert.equal(buf[1001 + FRAME_SIZE], 0xaa, 'byte after untouched');
  const back = decode(buf, 1001);
  assert.deepEqual({ ...back, hash: hex(back.hash), data: hex(back.data) }, { ...frame, hash: hex(frame.hash), data: hex(frame.data) });
  assert.equal(back.data.buffer, buf.buffer);
  assert.throws(() => encode(frame, buf, 5000 - FRAME_SIZE + 1), RangeError);
});

test('accepts non-zero padding (the original leaves the previous chunk there)', () => {
  const b = encode({ seq: 1, size: 10, offset: 0, hash: new Uint8Array(32), data: new Uint8Array(10).fill(1) });
  b.fill(0x55, 62);
  assert.equal(decode(b).data.length, 10);
});

test('accepts the empty tail frame the original sends at offset == size (and for an empty file)', () => {
  const tail = decode(encode({ seq: 2, size: 2 * CHUNK_SIZE, offset: 2 * CHUNK_SIZE, hash: new Uint8Array(32), data: new Uint8Array(0) }));
  assert.equal(tail.data.length, 0);
  const empty = decode(encode({ seq: 0, size: 0, offset: 0, hash: new Uint8Array(32), data: new Uint8Array(0) }));
  assert.equal(empty.size, 0);
});

function raw(fields: { seq?: number; size: bigint; offset: bigint; len: number; total?: number }): Uint8Array {
  const b = new Uint8Array(fields.total ?? FRAME_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, fields.seq ?? 0);
  v.setBigUint64(2, fields.size);
  v.setBigUint64(10, fields.offset);
  v.setUint16(18, fields.len);
  return b;
}

function assertFault(bytes: Uint8Array, fault: string, at = 0): void {
  assert.throws(
    () => decode(bytes, at),
    (err: unknown) => err instanceof FrameDecodeError && err instanceof DecodeError && err.fault === fault,
    `expected fault ${fault}`,
  );
}

test('malformed frames throw DecodeError with the fault named', () => {
  assertFault(new Uint8Array(0), 'short');
  assertFault(new Uint8Array(FRAME_SIZE - 1), 'short');
  assertFault(new Uint8Array(FRAME_SIZE), 'short', 1); // only 1245 bytes after the offset
  assertFault(raw({ size: 100_000n, offset: 0n, len: 1195 }), 'length');
  assertFault(raw({ size: 100_000n, offset: 0n, len: 65535 }), 'length');
  assertFault(raw({ size: 100_000n, offset: 0n, len: 10 }), 'length'); // partial chunk mid-file
  assertFault(raw({ size: 4000n, offset: 3582n, len: 1194 }), 'offset'); // offset + len > size
  assertFault(raw({ size: 4000n, offset: 100n, len: 1194 }), 'offset'); // not a chunk boundary
  assertFault(raw({ size: 4000n, offset: 4776n, len: 0 }), 'offset'); // beyond the end
  assertFault(raw({ size: 4000n, offset: 0xffffffffffffffffn, len: 0 }), 'offset');
  assertFault(raw({ size: BigInt(MAX_FILE_SIZE) + 1n, offset: 0n, len: 1194 }), 'size');
  assertFault(raw({ size: 0xffffffffffffffffn, offset: 0n, len: 1194 }), 'size');
  // The cap itself is accepted.
  assert.equal(decode(raw({ size: BigInt(MAX_FILE_SIZE), offset: 0n, len: 1194 })).size, MAX_FILE_SIZE);
});

test('encode refuses frames that decode would refuse', () => {
  const hash = new Uint8Array(32);
  assert.throws(() => encode({ seq: 0, size: 100, offset: 0, hash, data: new Uint8Array(50) }), FrameDecodeError);
  assert.throws(() => encode({ seq: 0x10000, size: 100, offset: 0, hash, data: new Uint8Array(100) }), RangeError);
  assert.throws(() => encode({ seq: 0, size: 100, offset: 0, hash: new Uint8Array(31), data: new Uint8Array(100) }), RangeError);
});
