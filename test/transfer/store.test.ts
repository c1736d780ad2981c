// The store contract (src/transfer/receiver/store.ts), run against both stores: what the receiver
// core relies on, whether the object is assembled on disk (FileStore) or in memory (MemoryStore).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, MemoryStore, type ReceiverStore, type StoreLayout } from '../../src/transfer/receiver/index.js';
import { randomBytes } from './sim.js';

const T = 16;
// Two blocks: K = 4 (64 bytes) and K = 3 ending in a short symbol (40 bytes).
const LAYOUT: StoreLayout = {
  objectId: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
  size: 104,
  symbolSize: T,
  blocks: [
    { sbn: 0, offset: 0, length: 64, k: 4 },
    { sbn: 1, offset: 64, length: 40, k: 3 },
  ],
};
const DATA = randomBytes(LAYOUT.size, 99);
const DESCRIPTION = randomBytes(60, 7);

/** Source symbol `esi` of block `sbn` in DATA (its real bytes). */
function unit(sbn: number, esi: number): Uint8Array {
  const b = LAYOUT.blocks[sbn] as StoreLayout['blocks'][number];
  return DATA.subarray(b.offset + esi * T, Math.min(b.offset + b.length, b.offset + esi * T + T));
}

interface Harness {
  make(): ReceiverStore;
  /** The store a restarted receiver would get (the same object for memory, a new one on the same spool for files). */
  reopen(prev: ReceiverStore): ReceiverStore;
  delivered(s: ReceiverStore): Uint8Array | undefined;
  cleanup(): void;
}

const harnesses: [string, () => Harness][] = [
  [
    'MemoryStore',
    () => ({
      make: () => new MemoryStore(),
      reopen: (prev) => prev,
      delivered: (s) => (s as MemoryStore).result,
      cleanup: () => {},
    }),
  ],
  [
    'FileStore',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'iotupd-store-'));
      const out = join(dir, 'o.bin');
      return {
        make: () => new FileStore({ out }),
        reopen: () => new FileStore({ out }),
        delivered: () => (existsSync(out) ? new Uint8Array(readFileSync(out)) : undefined),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
];

for (const [name, harness] of harnesses) {
  test(`${name}: source symbols and decoded units land at their place; the rest reads as zeros`, () => {
    const h = harness();
    try {
      const s = h.make();
      assert.equal(s.saved(), undefined, 'a fresh store holds nothing');
      assert.equal(s.open(DESCRIPTION, LAYOUT, false), undefined);
      assert.deepEqual(s.saved(), DESCRIPTION);
      s.writeSource(0, 1, unit(0, 1));
      s.writeSource(1, 2, unit(1, 2)); // the short last symbol: 8 bytes
      s.writeUnits(0, 2, DATA.subarray(32, 64)); // units 2 and 3 of block 0, decoded
      const got = s.readData(0, new Uint8Array(LAYOUT.size + 20).fill(0xee));
      const want = new Uint8Array(LAYOUT.size + 20);
      want.set(DATA.subarray(16, 64), 16);
      want.set(unit(1, 2), 64 + 32);
      assert.deepEqual(got, want, 'written ranges hold their bytes; unwritten ones and the bytes past the end are zero');
      assert.ok(got.some((x) => x !== 0));
      assert.deepEqual(s.readData(70, new Uint8Array(10)), new Uint8Array(10));
      s.close();
    } finally {
      h.cleanup();
    }
  });

  test(`${name}: kept symbols read back by their handle, and only as the symbol they were kept as`, () => {
    const h = harness();
    try {
      const s = h.make();
      s.open(DESCRIPTION, LAYOUT, false);
      const symbols = [0, 1, 2].map((i) => randomBytes(T, 200 + i));
      const refs = symbols.map((sym, i) => s.keepSymbol(i % 2, 10 + i, sym));
      assert.equal(new Set(refs).size, 3, 'distinct handles');
      symbols.forEach((sym, i) => assert.deepEqual(s.readSymbol(refs[i] as number, i % 2, 10 + i), sym));
      assert.equal(s.readSymbol(refs[0] as number, 0, 11), undefined, 'another ESI');
      assert.equal(s.readSymbol(refs[0] as number, 1, 10), undefined, 'another block');
      s.close();
    } finally {
      h.cleanup();
    }
  });

  test(`${name}: a store reopened after the receiver stopped reports what it holds: done blocks, placed source symbols, kept symbols`, () => {
    const h = harness();
    try {
      const s1 = h.make();
      s1.open(DESCRIPTION, LAYOUT, false);
      for (let esi = 0; esi < 4; esi++) s1.writeSource(0, esi, unit(0, esi));
      s1.blockDone(0);
      s1.writeSource(1, 0, unit(1, 0));
      s1.writeSource(1, 2, unit(1, 2));
      const repair = randomBytes(T, 5);
      s1.keepSymbol(1, 7, repair);
      s1.close();
      const s2 = h.reopen(s1);
      assert.deepEqual(s2.saved(), DESCRIPTION);
      const r = s2.open(DESCRIPTION, LAYOUT, true);
      assert.ok(r);
      assert.equal(r.corrupt, 0);
      assert.equal(r.blocks.length, 2);
      assert.equal(r.blocks[0]?.done, true);
      assert.equal(r.blocks[1]?.done, false);
      assert.deepEqual(r.blocks[1]?.placed, [0, 2]);
      assert.deepEqual(r.blocks[1]?.keptEsis, [7]);
      assert.deepEqual(s2.readSymbol(r.blocks[1]?.keptRefs[0] as number, 1, 7), repair);
      assert.deepEqual(s2.readData(0, new Uint8Array(64)), DATA.subarray(0, 64));
      s2.close();
    } finally {
      h.cleanup();
    }
  });

  test(`${name}: a block reset and written again whole is done on resume; commit delivers the object and clears the store`, () => {
    const h = harness();
    try {
      const s1 = h.make();
      s1.open(DESCRIPTION, LAYOUT, false);
      // Block 1 first gets a wrong source symbol, is rejected, then comes back decoded whole.
      s1.writeSource(1, 0, randomBytes(T, 1));
      s1.resetBlock(1);
      s1.writeUnits(1, 0, DATA.subarray(64, 104));
      s1.blockDone(1);
      s1.writeUnits(0, 0, DATA.subarray(0, 64));
      s1.blockDone(0);
      s1.close();
      const s2 = h.reopen(s1);
      const r = s2.open(DESCRIPTION, LAYOUT, true);
      assert.deepEqual(
        r?.blocks.map((b) => b.done),
        [true, true],
      );
      assert.equal(h.delivered(s2), undefined, 'nothing delivered before commit');
      s2.commit();
      const got = h.delivered(s2);
      assert.ok(got && got.length === LAYOUT.size);
      assert.deepEqual(got, DATA);
      assert.equal(s2.saved(), undefined, 'nothing left to resume');
    } finally {
      h.cleanup();
    }
  });

  test(`${name}: discard forgets the object`, () => {
    const h = harness();
    try {
      const s1 = h.make();
      s1.open(DESCRIPTION, LAYOUT, false);
      s1.writeSource(0, 0, unit(0, 0));
      s1.discard();
      assert.equal(s1.saved(), undefined);
      assert.equal(h.reopen(s1).saved(), undefined);
      // Usable again for the next object.
      assert.equal(s1.open(DESCRIPTION, LAYOUT, false), undefined);
      assert.deepEqual(s1.readData(0, new Uint8Array(16)), new Uint8Array(16), 'the old bytes are gone');
      s1.close();
    } finally {
      h.cleanup();
    }
  });
}
