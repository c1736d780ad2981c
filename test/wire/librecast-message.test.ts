import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decode,
  decodeDatagram,
  encode,
  encodingLength,
  HEADER_SIZE,
  MAX_PAYLOAD,
  Opcode,
  opcodeName,
  LibrecastMessageDecodeError,
  type LibrecastMessage,
} from '../../src/wire/librecast-message.js';
import { DecodeError } from '../../src/errors.js';
import { prng as rng } from '../support/prng.js';

// lc_msg_send of the 5-byte payload "hello" is 38 bytes on the wire (the 33-byte header, then the
// payload: docs/channels.md, "Message header"). These bytes are written out by hand from the
// header table, not produced by our encoder.
const HELLO = Uint8Array.from([
  0x18, 0x7b, 0x2c, 0x4e, 0x5a, 0x3f, 0x00, 0x01, // timestamp 0x187b2c4e5a3f0001 ns
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // seq 42
  0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, // rnd
  0x03, //                                           opcode GET
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // length 5
  0x68, 0x65, 0x6c, 0x6c, 0x6f, //                   "hello"
]);
const HELLO_MSG: LibrecastMessage = {
  timestamp: 0x187b2c4e5a3f0001n,
  seq: 42n,
  rnd: 0xdeadbeef01020304n,
  opcode: Opcode.GET,
  payload: new TextEncoder().encode('hello'),
};


test('known answer: 38-byte "hello" message', () => {
  assert.equal(HELLO.length, 38);
  assert.equal(encodingLength(HELLO_MSG), 38);
  assert.deepEqual(encode(HELLO_MSG), HELLO);
  const msg = decodeDatagram(HELLO);
  assert.equal(msg.timestamp, HELLO_MSG.timestamp);
  assert.equal(msg.seq, 42n);
  assert.equal(msg.rnd, 0xdeadbeef01020304n);
  assert.equal(msg.opcode, Opcode.GET);
  assert.equal(opcodeName(msg.opcode), 'GET');
  assert.equal(new TextDecoder().decode(msg.payload), 'hello');
});

test('opcodes are librecast/types.h LC_OPCODES', () => {
  assert.deepEqual(Opcode, { DATA: 0, PING: 1, PONG: 2, GET: 3, SET: 4, DEL: 5, RET: 6 });
});

test('round trip at an offset inside a larger buffer, random messages (seeded)', () => {
  const r = rng(0x1ec);
  const u64 = (): bigint => (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
  for (let i = 0; i < 200; i += 1) {
    const len = i === 0 ? 0 : i === 1 ? MAX_PAYLOAD : Math.floor(r() * 1500);
    const msg: LibrecastMessage = {
      timestamp: u64(),
      seq: i === 2 ? 0xffff_ffff_ffff_ffffn : u64(),
      rnd: u64(),
      opcode: Math.floor(r() * 7) as Opcode,
      payload: Uint8Array.from({ length: len }, () => Math.floor(r() * 256)),
    };
    const at = 1 + Math.floor(r() * 64);
    const buf = new Uint8Array(at + encodingLength(msg) + 17).fill(0xa5);
    const written = encode(msg, buf, at);
    assert.equal(written.length, HEADER_SIZE + len);
    assert.equal(buf[at - 1], 0xa5, 'byte before untouched');
    assert.equal(buf[at + written.length], 0xa5, 'byte after untouched');
    const back = decode(buf, at);
    assert.deepEqual({ ...back, payload: Array.from(back.payload) }, { ...msg, payload: Array.from(msg.payload) });
    assert.deepEqual(decodeDatagram(written), back);
  }
});

test('malformed input: short, length beyond the datagram, unknown opcode, trailing bytes', () => {
  const fault = (f: () => unknown, expected: string): void => {
    assert.throws(f, (e: unknown) => e instanceof LibrecastMessageDecodeError && e instanceof DecodeError && e.fault === expected && e.code === 'ERR_DECODE_LIBRECAST_MESSAGE');
  };
  for (let n = 0; n < HEADER_SIZE; n += 1) fault(() => decode(HELLO.subarray(0, n)), 'short');
  fault(() => decode(HELLO, 6), 'short'); // 32 bytes left
  fault(() => decode(HELLO, -1), 'short');
  fault(() => decode(HELLO.subarray(0, 37)), 'length'); // header says 5, 4 present
  const huge = new Uint8Array(HELLO);
  new DataView(huge.buffer).setBigUint64(25, 0xffff_ffff_ffff_ffffn);
  fault(() => decode(huge), 'length');
  new DataView(huge.buffer).setBigUint64(25, 6n);
  fault(() => decode(huge), 'length');
  for (const op of [7, 8, 0x80, 0xff]) {
    const bad = new Uint8Array(HELLO);
    bad[24] = op;
    fault(() => decode(bad), 'opcode');
  }
  const long = new Uint8Array(39);
  long.set(HELLO);
  assert.equal(decode(long).payload.length, 5); // decode in a larger buffer ignores what follows
  fault(() => decodeDatagram(long), 'trailing');
  const zero = encode({ ...HELLO_MSG, payload: new Uint8Array(0) });
  assert.equal(zero.length, HEADER_SIZE);
  assert.equal(decodeDatagram(zero).payload.length, 0);
});

test('encode refuses values the header cannot carry', () => {
  assert.throws(() => encode({ ...HELLO_MSG, seq: -1n }), RangeError);
  assert.throws(() => encode({ ...HELLO_MSG, rnd: 1n << 64n }), RangeError);
  assert.throws(() => encode({ ...HELLO_MSG, timestamp: 5 as unknown as bigint }), RangeError);
  assert.throws(() => encode({ ...HELLO_MSG, opcode: 7 as Opcode }), RangeError);
  assert.throws(() => encode({ ...HELLO_MSG, payload: new Uint8Array(MAX_PAYLOAD + 1) }), RangeError);
  assert.throws(() => encode(HELLO_MSG, new Uint8Array(40), 3), RangeError);
});
