import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SYMBOL_SIZE,
  Flags,
  HEADER_LENGTH,
  HashAlgorithm,
  IPV6_MIN_MTU,
  IPV6_UDP_OVERHEAD,
  PacketType,
  authenticatedBytes,
  decodeHeader,
  decodePacket,
  encodeHeader,
  headerLength,
  descriptionEncodingLength,
  encodeDescription,
  encodeRaw,
  encodeSymbol,
  isFountainPacket,
  maxSymbolSize,
  objectIdHex,
  parseObjectIdHex,
  symbolEncodingLength,
  type PacketHeader,
} from '../../src/wire/fountain.js';
import { DecodeError } from '../../src/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const OID = fromHex('0102030405060708');

test('symbol packet bytes match the diagram in docs/protocol.md', () => {
  const bytes = encodeSymbol({ objectId: OID }, { sbn: 0x12, esi: 0x345678, symbol: fromHex('aabbccdd') });
  assert.equal(
    hex(bytes),
    '4951' + '01' + '02' + // magic, version 1, type SYMBOL
      '00' + '00' + '0000' + // flags, trailer length, extension length
      '0102030405060708' + // object id
      '12' + '345678' + // SBN, ESI (RFC 6330 3.2)
      'aabbccdd',
  );
  const p = decodePacket(bytes);
  assert.equal(p.kind, 'symbol');
  if (p.kind !== 'symbol') return;
  assert.equal(p.type, PacketType.SYMBOL);
  assert.equal(p.symbol.sbn, 0x12);
  assert.equal(p.symbol.esi, 0x345678);
  assert.equal(hex(p.symbol.symbol), 'aabbccdd');
});

test('description packet bytes match the diagram in docs/protocol.md', () => {
  const oti = fromHex('000000100000049c01000104'); // F=4096, T=1180, Z=1, N=1, Al=4
  const hash = new Uint8Array(32).map((_, i) => i);
  const bytes = encodeDescription({ objectId: OID }, { oti, size: 4096, hashAlgorithm: HashAlgorithm.SHA256, hash, name: 'fw.bin' });
  assert.equal(
    hex(bytes),
    '4951' + '01' + '01' + '00' + '00' + '0000' + '0102030405060708' +
      '000000100000049c01000104' + // OTI
      '0000000000001000' + // size
      '01' + '06' + // hash algorithm SHA-256, name length
      hex(hash) +
      hex(new TextEncoder().encode('fw.bin')),
  );
  assert.equal(bytes.length, descriptionEncodingLength({ objectId: OID }, { oti, size: 4096, hashAlgorithm: 1, hash, name: 'fw.bin' }));
  const p = decodePacket(bytes);
  assert.equal(p.kind, 'description');
  if (p.kind !== 'description') return;
  assert.equal(p.description.size, 4096);
  assert.equal(p.description.name, 'fw.bin');
  assert.deepEqual(p.description.hash, hash);
  assert.deepEqual(p.description.oti, oti);
});

test('default symbol size keeps the whole IPv6 packet within 1280 bytes with room for a 28-byte tag', () => {
  const len = symbolEncodingLength({ objectId: OID }, DEFAULT_SYMBOL_SIZE);
  assert.equal(len + IPV6_UDP_OVERHEAD, 1252);
  assert.ok(len + IPV6_UDP_OVERHEAD + 28 <= IPV6_MIN_MTU);
  assert.equal(maxSymbolSize(), 1212);
  assert.equal(maxSymbolSize(1280, 4, 16), 1192);
  assert.equal(DEFAULT_SYMBOL_SIZE % 16, 0);
});

test('extensions and an auth trailer round-trip and leave the body where it was', () => {
  const trailer = new Uint8Array(16).fill(0xee);
  const ext = [{ type: 7, value: fromHex('cafe') }, { type: 9, value: new Uint8Array(0) }];
  const buf = new Uint8Array(200).fill(0x55);
  const written = encodeSymbol({ objectId: OID, flags: Flags.AUTH, extensions: ext, trailer }, { sbn: 1, esi: 2, symbol: fromHex('0102') }, buf, 33);
  assert.equal(written.byteOffset, 33);
  assert.equal(buf[32], 0x55);
  assert.equal(buf[33 + written.length], 0x55);
  assert.equal(written.length, HEADER_LENGTH + 6 + 4 + 2 + 16);
  const p = decodePacket(written);
  assert.equal(p.flags, Flags.AUTH);
  assert.equal(p.extensions.length, 2);
  assert.equal(p.extensions[0]?.type, 7);
  assert.equal(hex(p.extensions[0]?.value ?? new Uint8Array()), 'cafe');
  assert.equal(hex(p.trailer), 'ee'.repeat(16));
  assert.ok(p.kind === 'symbol' && hex(p.symbol.symbol) === '0102');
  assert.equal(authenticatedBytes(written).length, written.length - 16);
});

test('reserved security packet types decode as raw bodies', () => {
  const body = fromHex('00112233');
  const bytes = encodeRaw(PacketType.MANIFEST, { objectId: OID }, body);
  const p = decodePacket(bytes);
  assert.equal(p.kind, 'other');
  assert.equal(p.type, PacketType.MANIFEST);
  assert.ok(p.kind === 'other' && hex(p.body) === '00112233');
  // An encrypted description is not interpreted either.
  const enc = encodeRaw(PacketType.DESCRIPTION, { objectId: OID, flags: Flags.ENCRYPTED }, body);
  assert.equal(decodePacket(enc).kind, 'other');
});

test('rejects bad magic, version, unknown flags, truncation and inconsistent lengths with DecodeError', () => {
  const good = encodeSymbol({ objectId: OID }, { sbn: 0, esi: 0, symbol: new Uint8Array(8) });
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['short header', good.subarray(0, 15)],
    ['bad magic', Uint8Array.from(good, (b, i) => (i === 0 ? 0 : b))],
    ['version 2', Uint8Array.from(good, (b, i) => (i === 2 ? 2 : b))],
    ['unknown flag', Uint8Array.from(good, (b, i) => (i === 4 ? 0x80 : b))],
    ['trailer too long', Uint8Array.from(good, (b, i) => (i === 5 ? 200 : b))],
    ['extension too long', Uint8Array.from(good, (b, i) => (i === 7 ? 100 : b))],
    ['symbol without data', good.subarray(0, HEADER_LENGTH + 4)],
  ];
  for (const [name, bytes] of cases) assert.throws(() => decodePacket(bytes), DecodeError, name);
  const desc = encodeDescription({ objectId: OID }, { oti: new Uint8Array(12), size: 1, hashAlgorithm: 1, hash: new Uint8Array(32), name: 'x' });
  assert.throws(() => decodePacket(desc.subarray(0, desc.length - 1)), DecodeError, 'name cut');
  assert.throws(() => decodePacket(Uint8Array.from([...desc, 0])), DecodeError, 'extra byte');
  const badUtf8 = new Uint8Array(desc);
  badUtf8[badUtf8.length - 1] = 0xff;
  assert.throws(() => decodePacket(badUtf8), DecodeError, 'invalid UTF-8 name');
});

test('header codec: bytes of the diagram, round trip at an offset inside a larger buffer', () => {
  const ext = [{ type: 7, value: fromHex('cafe') }];
  const h = { objectId: OID, flags: Flags.AUTH | Flags.ENCRYPTED, extensions: ext, trailer: new Uint8Array(28) };
  assert.equal(headerLength(h), HEADER_LENGTH + 4);
  const buf = new Uint8Array(100).fill(0x55);
  const written = encodeHeader(PacketType.SIGNATURE, h, buf, 21);
  assert.equal(written.byteOffset, 21);
  assert.equal(written.length, headerLength(h));
  assert.equal(buf[20], 0x55, 'nothing written before the offset');
  assert.equal(buf[21 + written.length], 0x55, 'nothing written after the header');
  // magic 'I' 'Q', version 1, type 4 | flags 3, trailer 28, extension length 4 | object id | TLV
  assert.equal(hex(written), '49510104' + '031c0004' + '0102030405060708' + '0702cafe');
  // The packet at offset 21 runs to the end of the buffer: 100 - 21 = 79 bytes, the last 28 the trailer.
  const d = decodeHeader(buf, 21);
  assert.deepEqual({ ...d, objectId: hex(d.objectId) }, {
    type: PacketType.SIGNATURE,
    flags: 3,
    trailerLength: 28,
    extensionLength: 4,
    objectId: hex(OID),
    bodyOffset: HEADER_LENGTH + 4,
    bodyEnd: 79 - 28,
  });
  assert.equal(d.objectId.byteOffset, 21 + 8, 'the object id is a view of the packet');
  // The header the packet encoders write decodes to the same fields, with the body where they put it.
  const sym = encodeSymbol(h, { sbn: 3, esi: 9, symbol: fromHex('0a0b') });
  const into = {} as PacketHeader;
  assert.equal(decodeHeader(sym, 0, into), into);
  assert.equal(into.bodyOffset, HEADER_LENGTH + 4);
  assert.equal(hex(sym.subarray(into.bodyOffset, into.bodyEnd)), '030000090a0b');
  assert.equal(into.bodyEnd, sym.length - 28);
  assert.equal(hex(encodeHeader(PacketType.SYMBOL, h)), hex(sym.subarray(0, headerLength(h))));
});

test('header codec: malformed headers are DecodeErrors with their codes, at an offset too', () => {
  const good = encodeRaw(PacketType.MANIFEST, { objectId: OID, trailer: new Uint8Array(4) }, fromHex('00112233'));
  const at = (bytes: Uint8Array, offset: number) => {
    const buf = new Uint8Array(offset + bytes.length).fill(0x49);
    buf.set(bytes, offset);
    return buf;
  };
  const code = (bytes: Uint8Array, offset = 0) => {
    try {
      decodeHeader(bytes, offset);
    } catch (err) {
      assert.ok(err instanceof DecodeError, String(err));
      return err.code;
    }
    return 'accepted';
  };
  for (const offset of [0, 7]) {
    assert.equal(code(at(good, offset), offset), 'accepted');
    assert.equal(code(at(good.subarray(0, 15), offset), offset), 'ERR_DECODE', 'shorter than the fixed header');
    assert.equal(code(at(Uint8Array.from(good, (b, i) => (i === 1 ? 0 : b)), offset), offset), 'ERR_DECODE_MAGIC');
    assert.equal(code(at(Uint8Array.from(good, (b, i) => (i === 2 ? 2 : b)), offset), offset), 'ERR_DECODE_VERSION');
    assert.equal(code(at(Uint8Array.from(good, (b, i) => (i === 4 ? 0x04 : b)), offset), offset), 'ERR_DECODE_FLAGS');
    // 16 + 0 + 9 > 24 bytes: the trailer would overlap the header.
    assert.equal(code(at(Uint8Array.from(good, (b, i) => (i === 5 ? 9 : b)), offset), offset), 'ERR_DECODE', 'trailer too long');
    assert.equal(code(at(Uint8Array.from(good, (b, i) => (i === 6 ? 1 : b)), offset), offset), 'ERR_DECODE', 'extensions too long');
  }
  // Exactly filling the packet is allowed: an empty body.
  assert.equal(decodeHeader(Uint8Array.from(good, (b, i) => (i === 5 ? 8 : b))).bodyEnd, HEADER_LENGTH);
  assert.equal(code(good, -1), 'ERR_DECODE', 'negative offset');
  assert.equal(code(good, good.length), 'ERR_DECODE', 'offset at the end');
  assert.throws(() => encodeHeader(256, { objectId: OID }), DecodeError);
  assert.throws(() => encodeHeader(1, { objectId: OID }, new Uint8Array(20), 5), DecodeError, 'buffer too small at that offset');
  assert.throws(() => encodeHeader(1, { objectId: OID.subarray(1) }), DecodeError, 'object id of 7 bytes');
});

test('encoder refuses values that do not fit their fields'
, () => {
  const h = { objectId: OID };
  assert.throws(() => encodeSymbol(h, { sbn: 256, esi: 0, symbol: new Uint8Array(1) }), DecodeError);
  assert.throws(() => encodeSymbol(h, { sbn: 0, esi: 2 ** 24, symbol: new Uint8Array(1) }), DecodeError);
  assert.throws(() => encodeSymbol({ objectId: new Uint8Array(7) }, { sbn: 0, esi: 0, symbol: new Uint8Array(1) }), DecodeError);
  assert.throws(
    () => encodeDescription(h, { oti: new Uint8Array(12), size: 1, hashAlgorithm: 1, hash: new Uint8Array(32), name: 'x'.repeat(256) }),
    DecodeError,
  );
});

test('fuzz: random bytes and mutations of valid packets never throw anything but DecodeError', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const valid = [
    encodeSymbol({ objectId: OID, flags: Flags.AUTH, trailer: new Uint8Array(8) }, { sbn: 3, esi: 99, symbol: new Uint8Array(40) }),
    encodeDescription({ objectId: OID }, { oti: new Uint8Array(12), size: 7, hashAlgorithm: 1, hash: new Uint8Array(32), name: 'näme' }),
  ];
  for (let i = 0; i < 20000; i++) {
    let bytes: Uint8Array;
    if (i % 3 === 0) bytes = Uint8Array.from({ length: Math.floor(rnd() * 120) }, () => Math.floor(rnd() * 256));
    else {
      const v = valid[i % 2] as Uint8Array;
      bytes = new Uint8Array(v.subarray(0, Math.floor(rnd() * (v.length + 1))));
      const flips = Math.floor(rnd() * 4);
      for (let f = 0; f < flips && bytes.length > 0; f++) bytes[Math.floor(rnd() * bytes.length)]! ^= 1 << Math.floor(rnd() * 8);
    }
    try {
      decodePacket(bytes);
    } catch (err) {
      assert.ok(err instanceof DecodeError, `unexpected ${String(err)}`);
    }
  }
});

test('isFountainPacket and object id hex helpers', () => {
  assert.ok(isFountainPacket(encodeSymbol({ objectId: OID }, { sbn: 0, esi: 0, symbol: new Uint8Array(1) })));
  assert.ok(!isFountainPacket(new Uint8Array(1246)));
  assert.equal(objectIdHex(OID), '0102030405060708');
  assert.deepEqual(parseObjectIdHex('0102030405060708'), OID);
  assert.throws(() => parseObjectIdHex('xyz'), DecodeError);
});
