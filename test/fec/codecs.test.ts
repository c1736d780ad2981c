// OTI (3.3), FEC Payload ID (3.2), partitioning (4.4.1.2) and the OTI derivation (4.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FecError } from '../../src/errors.js';
import {
  MAX_TRANSFER_LENGTH,
  blockPartition,
  decodeOti,
  decodePayloadId,
  encodeOti,
  encodePayloadId,
  otiFor,
  subSymbolSizes,
  validateOti,
} from '../../src/fec/index.js';
import type { Oti } from '../../src/fec/index.js';
import { partition } from '../../src/fec/partition.js';
import { prng } from './helpers.js';

const fecCode = (code: string) => (e: unknown) => e instanceof FecError && e.code === code;

test('OTI: 12 bytes as in RFC 6330 3.3.2/3.3.3, at an offset, round trip', () => {
  const oti: Oti = { transferLength: 12345678, symbolSize: 1200, sourceBlocks: 4, subBlocks: 1, alignment: 4 };
  assert.deepEqual([...encodeOti(oti)], [0x00, 0x00, 0xbc, 0x61, 0x4e, 0x00, 0x04, 0xb0, 0x04, 0x00, 0x01, 0x04]);
  const big: Oti = { transferLength: 2 ** 40 - 1 - 5, symbolSize: 65535, sourceBlocks: 255, subBlocks: 3, alignment: 5 };
  const buf = new Uint8Array(20).fill(0xee);
  encodeOti({ ...big, transferLength: 56403 * 65535 * 255 }, buf, 5);
  assert.equal(buf[4], 0xee);
  assert.equal(buf[17], 0xee);
  assert.deepEqual(decodeOti(buf, 5), { ...big, transferLength: 56403 * 65535 * 255 });
  assert.deepEqual(decodeOti(encodeOti(oti)), oti);
});

test('OTI: impossible values throw FecError ERR_FEC_OTI', () => {
  const good = encodeOti({ transferLength: 1000, symbolSize: 100, sourceBlocks: 1, subBlocks: 1, alignment: 4 });
  const mutate = (i: number, v: number): Uint8Array => {
    const b = good.slice();
    b[i] = v;
    return b;
  };
  assert.throws(() => decodeOti(good.subarray(0, 11)), fecCode('ERR_FEC_OTI'));
  assert.throws(() => decodeOti(good, 1), fecCode('ERR_FEC_OTI'));
  assert.throws(() => decodeOti(mutate(4, 0).fill(0, 0, 5)), fecCode('ERR_FEC_OTI')); // F = 0
  assert.throws(() => decodeOti(mutate(7, 0).fill(0, 6, 8)), fecCode('ERR_FEC_OTI')); // T = 0
  assert.throws(() => decodeOti(mutate(7, 101)), fecCode('ERR_FEC_OTI')); // T % Al != 0
  assert.throws(() => decodeOti(mutate(8, 0)), fecCode('ERR_FEC_OTI')); // Z = 0
  assert.throws(() => decodeOti(mutate(8, 11)), fecCode('ERR_FEC_OTI')); // Z > Kt = 10
  assert.throws(() => decodeOti(mutate(10, 0)), fecCode('ERR_FEC_OTI')); // N = 0
  assert.throws(() => decodeOti(mutate(10, 26)), fecCode('ERR_FEC_OTI')); // N > T/Al = 25
  assert.throws(() => decodeOti(mutate(11, 0)), fecCode('ERR_FEC_OTI')); // Al = 0
  // A block of more than 56403 symbols.
  assert.throws(() => validateOti({ transferLength: 56404 * 4, symbolSize: 4, sourceBlocks: 1, subBlocks: 1, alignment: 4 }), fecCode('ERR_FEC_OTI'));
  assert.throws(() => validateOti({ transferLength: 1.5, symbolSize: 4, sourceBlocks: 1, subBlocks: 1, alignment: 4 }), fecCode('ERR_FEC_OTI'));
  // Random bytes never crash: they decode or throw FecError.
  const rnd = prng(7);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(12).map(() => (rnd() * 256) | 0);
    if (rnd() < 0.5) b[0] = 0;
    try {
      const o = decodeOti(b);
      assert.ok(blockPartition(o).length === o.sourceBlocks);
    } catch (e) {
      assert.ok(e instanceof FecError, String(e));
    }
  }
});

test('FEC Payload ID: 8-bit SBN, 24-bit ESI, big-endian (3.2)', () => {
  assert.deepEqual([...encodePayloadId(5, 0x123456)], [5, 0x12, 0x34, 0x56]);
  const buf = new Uint8Array(8);
  encodePayloadId(255, 0xffffff, buf, 3);
  assert.deepEqual(decodePayloadId(buf, 3), { sbn: 255, esi: 0xffffff });
  assert.deepEqual(decodePayloadId(new Uint8Array([0, 0, 0, 0])), { sbn: 0, esi: 0 });
  assert.throws(() => encodePayloadId(256, 0), fecCode('ERR_FEC_SBN'));
  assert.throws(() => encodePayloadId(0, 2 ** 24), fecCode('ERR_FEC_ESI'));
  assert.throws(() => encodePayloadId(0, -1), fecCode('ERR_FEC_ESI'));
  assert.throws(() => encodePayloadId(0, 0, buf, 5), fecCode('ERR_FEC_PAYLOAD_ID'));
  assert.throws(() => decodePayloadId(buf, 5), fecCode('ERR_FEC_PAYLOAD_ID'));
  assert.throws(() => decodePayloadId(buf, -1), fecCode('ERR_FEC_PAYLOAD_ID'));
});

test('Partition[I, J] (4.4.1.2)', () => {
  assert.deepEqual(partition(10289, 4), { il: 2573, is: 2572, jl: 1, js: 3 });
  assert.deepEqual(partition(12, 4), { il: 3, is: 3, jl: 0, js: 4 });
  assert.deepEqual(partition(256, 4), { il: 64, is: 64, jl: 0, js: 4 });
  assert.deepEqual(partition(255, 4), { il: 64, is: 63, jl: 3, js: 1 });
  assert.deepEqual(subSymbolSizes(1020, 4, 4), [256, 256, 256, 252]);
  assert.deepEqual(subSymbolSizes(65535, 7, 1), [9363, 9362, 9362, 9362, 9362, 9362, 9362]);
});

test('partitioning of objects from 1 byte to the RFC maximum (pure arithmetic)', () => {
  const sizes = [1, 3, 4, 5, 1279, 1280, 1281, 12800, 1 << 20, 2 ** 31 - 1, 2 ** 32 + 17, 5 * 2 ** 30, 3 * 2 ** 40 / 4, MAX_TRANSFER_LENGTH];
  const rnd = prng(11);
  for (let i = 0; i < 200; i++) sizes.push(1 + Math.floor(rnd() * 2 ** (1 + rnd() * 38)));
  for (const f of sizes) {
    for (const t of [4, 1280, 65532, 65535]) {
      const maxBlockSymbols = t === 65535 || f === MAX_TRANSFER_LENGTH ? 56403 : 8192;
      let oti: Oti;
      try {
        oti = otiFor(f, t, { maxBlockSymbols });
      } catch (e) {
        // Only objects that need more than 255 blocks of 56403 symbols can be refused.
        assert.ok(e instanceof FecError && e.code === 'ERR_FEC_OTI', String(e));
        assert.ok(Math.ceil(f / t) > 255 * maxBlockSymbols, `otiFor(${f}, ${t}) refused`);
        continue;
      }
      assert.equal(oti.symbolSize % oti.alignment, 0);
      const blocks = blockPartition(oti);
      assert.equal(blocks.length, oti.sourceBlocks);
      assert.ok(oti.sourceBlocks >= 1 && oti.sourceBlocks <= 255);
      let offset = 0;
      let total = 0;
      const kt = Math.ceil(f / t);
      let ksum = 0;
      blocks.forEach((b, i) => {
        assert.equal(b.sbn, i);
        assert.equal(b.offset, offset);
        assert.ok(b.k >= 1 && b.k <= maxBlockSymbols);
        assert.ok(b.k === blocks[0]!.k || b.k === blocks[0]!.k - 1, 'KL then KS = KL - 1');
        if (i < blocks.length - 1) assert.equal(b.length, b.k * t);
        else assert.ok(b.length > (b.k - 1) * t && b.length <= b.k * t);
        offset += b.k * t;
        total += b.length;
        ksum += b.k;
      });
      assert.equal(total, f);
      assert.equal(ksum, kt);
      assert.deepEqual(decodeOti(encodeOti(oti)), oti);
    }
  }
  assert.throws(() => otiFor(MAX_TRANSFER_LENGTH + 1, 65535, { maxBlockSymbols: 56403 }), fecCode('ERR_FEC_OTI'));
  assert.throws(() => otiFor(0, 1280), fecCode('ERR_FEC_OTI'));
  assert.throws(() => otiFor(100, 1281, { alignment: 4 }), fecCode('ERR_FEC_OTI'));
});

test('otiFor: sub-blocks (4.3 with WS) and explicit N', () => {
  // WS = 64 KiB of sub-block per receiver: N grows until KL(N) >= ceil(Kt/Z).
  const oti = otiFor(10_000_000, 1280, { maxSubBlockBytes: 65536 });
  assert.ok(oti.subBlocks > 1);
  const subs = subSymbolSizes(oti.symbolSize, oti.subBlocks, oti.alignment);
  const k = blockPartition(oti)[0]!.k;
  assert.ok(k * Math.max(...subs) <= 65536 * 1.2, `sub-block of ${k} x ${Math.max(...subs)} bytes`);
  assert.equal(otiFor(100000, 1024, { subBlocks: 4 }).subBlocks, 4);
  for (let t = 4; t <= 65535; t += 4093 * 4) {
    const o = otiFor(3 * t + 1, t);
    assert.equal(o.alignment, 4);
    assert.deepEqual(blockPartition(o).map((b) => b.k), [4]);
  }
});
