// The RFC 6330 tables embedded in src/fec/rfc6330-data.ts: equal to test/fixtures/rfc6330-tables.json,
// and consistent with facts of the RFC text. The sums, XORs and the Table 2 digest below come
// from an independent parse of rfc6330.txt (published in a public Go test suite, which states
// they match the RFC text and cberner/raptorq 2.0.1's copy); the rows are quoted from Table 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DEG_F, SYSTEMATIC, V0, V1, V2, V3 } from '../../src/fec/rfc6330-data.js';
import { OCT_EXP, OCT_LOG, gfInv, gfMul } from '../../src/fec/gf256.js';
import { blockParams, deg, kPrimeIndex, rand } from '../../src/fec/rand.js';
import { readFixture } from './helpers.js';

interface Ref { V0: number[]; V1: number[]; V2: number[]; V3: number[]; deg_f: number[]; systematic: number[][]; oct_exp: number[]; oct_log: (number | null)[] }
const ref = readFixture<Ref>('rfc6330-tables.json');

test('embedded tables equal test/fixtures/rfc6330-tables.json', () => {
  assert.deepEqual([...V0], ref.V0);
  assert.deepEqual([...V1], ref.V1);
  assert.deepEqual([...V2], ref.V2);
  assert.deepEqual([...V3], ref.V3);
  assert.deepEqual([...DEG_F], ref.deg_f);
  assert.deepEqual([...SYSTEMATIC], ref.systematic.flat());
  assert.deepEqual([...OCT_EXP], ref.oct_exp);
  assert.deepEqual([...OCT_LOG].slice(1), ref.oct_log.slice(1));
});

test('V0..V3 (5.5): first, last, sum mod 2^32 and XOR as in the RFC text', () => {
  const want = [
    [251291136, 1358307511, 331395769, 2200914733],
    [807385413, 4135048896, 3270332586, 3069643552],
    [1629829892, 3497665928, 1176160967, 620986173],
    [1191369816, 3432275192, 3374522247, 1772968547],
  ];
  [V0, V1, V2, V3].forEach((v, i) => {
    let sum = 0;
    let xor = 0;
    for (const x of v) {
      sum = (sum + x) >>> 0;
      xor = (xor ^ x) >>> 0;
    }
    assert.deepEqual([v[0], v[255], sum, xor], want[i], `V${i}`);
  });
  assert.deepEqual([V0[1], V0[2], V0[3]], [3952231631, 3370958628, 4070167936]);
});

test('degree distribution (5.3.5.2, Table 1)', () => {
  assert.equal(DEG_F.length, 31);
  assert.deepEqual([DEG_F[0], DEG_F[1], DEG_F[2], DEG_F[29], DEG_F[30]], [0, 5243, 529531, 1017662, 1 << 20]);
  for (let d = 1; d < 31; d++) assert.ok(DEG_F[d]! > DEG_F[d - 1]!);
  // Deg[v]: f[d-1] <= v < f[d], then min(d, W-2).
  assert.equal(deg(0, 17), 1);
  assert.equal(deg(5242, 17), 1);
  assert.equal(deg(5243, 17), 2);
  assert.equal(deg(1048575, 1000), 30);
  assert.equal(deg(1048575, 17), 15);
});

test('systematic indices (5.6, Table 2): digest, quoted rows, derived parameters', () => {
  const h = createHash('sha256');
  const buf = Buffer.alloc(20);
  for (let i = 0; i < SYSTEMATIC.length; i += 5) {
    for (let j = 0; j < 5; j++) buf.writeUInt32BE(SYSTEMATIC[i + j]!, j * 4);
    h.update(buf);
  }
  assert.equal(h.digest('hex'), '9d3657cf3255cf51f9a93b762a37fbe740598e3b14259acc5641abedcd0da7d6');
  assert.equal(SYSTEMATIC.length, 477 * 5);
  const row = (kp: number): number[] => {
    const i = kPrimeIndex(kp) * 5;
    return [...SYSTEMATIC.subarray(i, i + 5)];
  };
  assert.deepEqual(row(10), [10, 254, 7, 10, 17]);
  assert.deepEqual(row(12), [12, 630, 7, 10, 19]);
  assert.deepEqual(row(18), [18, 682, 11, 10, 29]);
  assert.deepEqual(row(54735), [54735, 233, 877, 16, 55259]);
  assert.deepEqual(row(55289), [55289, 362, 883, 16, 55817]);
  assert.deepEqual(row(55843), [55843, 963, 907, 16, 56393]);
  assert.deepEqual(row(56403), [56403, 471, 907, 16, 56951]);
  // K' is the smallest table entry >= K; S and W are primes (5.6); P1 is the next prime >= P.
  assert.equal(blockParams(1).kPrime, 10);
  assert.equal(blockParams(11).kPrime, 12);
  assert.equal(blockParams(100).kPrime, 101);
  assert.equal(blockParams(101).kPrime, 101);
  const isPrime = (n: number): boolean => {
    for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
    return n >= 2;
  };
  for (let i = 0; i < SYSTEMATIC.length; i += 5) {
    assert.ok(isPrime(SYSTEMATIC[i + 2]!), `S of K'=${SYSTEMATIC[i]}`);
    assert.ok(isPrime(SYSTEMATIC[i + 4]!), `W of K'=${SYSTEMATIC[i]}`);
    if (i > 0) assert.ok(SYSTEMATIC[i]! > SYSTEMATIC[i - 5]!);
  }
  const bp = blockParams(10);
  assert.deepEqual([bp.l, bp.p, bp.p1, bp.b], [27, 10, 11, 10]);
});

test('GF(256) (5.7): OCT_EXP/OCT_LOG facts, field axioms', () => {
  assert.deepEqual([OCT_EXP[0], OCT_EXP[8], OCT_EXP[509]], [1, 29, 142]);
  assert.deepEqual([OCT_LOG[1], OCT_LOG[2], OCT_LOG[255]], [0, 1, 175]);
  for (let v = 1; v < 256; v++) {
    assert.equal(OCT_EXP[OCT_LOG[v]!], v);
    assert.equal(gfMul(v, gfInv(v)), 1);
  }
  assert.equal(gfMul(0x80, 2), 0x1d); // x^8 = x^4 + x^3 + x^2 + 1
  for (let a = 0; a < 256; a += 17) for (let b = 0; b < 256; b += 13) assert.equal(gfMul(a, b), gfMul(b, a));
});

test('Rand (5.3.5.1) uses all four V tables', () => {
  // Rand[y, i, m] = (V0[(y + i) % 256] ^ V1[(y/256 + i) % 256] ^ V2[(y/2^16 + i) % 256] ^ V3[(y/2^24 + i) % 256]) % m
  const y = 0x12345678;
  const expect = ((V0[(0x78 + 3) % 256]! ^ V1[(0x56 + 3) % 256]! ^ V2[(0x34 + 3) % 256]! ^ V3[(0x12 + 3) % 256]!) >>> 0) % 1000;
  assert.equal(rand(y, 3, 1000), expect);
  assert.equal(rand(0xffffffff, 255, 2 ** 20), ((V0[254]! ^ V1[254]! ^ V2[254]! ^ V3[254]!) >>> 0) % 2 ** 20);
});
