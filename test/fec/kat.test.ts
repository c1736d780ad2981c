// Every known-answer vector of test/fixtures/raptorq-kat.json (Rust raptorq 2.0.1, checked
// against liblcrq): the sha256 of each encoding symbol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ObjectEncoder, blockPartition, kernel, setKernel } from '../../src/fec/index.js';
import type { KernelKind } from '../../src/fec/index.js';
import { katData, readFixture } from './helpers.js';

interface Vector { F: number; T: number; Z: number; N: number; Al: number; K: number; sbn: number; esi: number; sha256: string; head: string }
const kat = readFixture<{ vectors: Vector[] }>('raptorq-kat.json');

function runAll(kind: KernelKind): void {
  const saved = kernel();
  setKernel(kind);
  try {
    let enc: ObjectEncoder | undefined;
    let key = '';
    let checked = 0;
    for (const v of kat.vectors) {
      const oti = { transferLength: v.F, symbolSize: v.T, sourceBlocks: v.Z, subBlocks: v.N, alignment: v.Al };
      const k = [v.F, v.T, v.Z, v.N, v.Al].join();
      if (k !== key) {
        enc = new ObjectEncoder(katData(v.F), oti);
        key = k;
      }
      assert.equal(blockPartition(oti)[v.sbn]!.k, v.K, `K of block ${v.sbn} for ${k}`);
      const sym = enc!.symbol(v.sbn, v.esi);
      assert.equal(sym.length, v.T);
      assert.equal(Buffer.from(sym.subarray(0, 16)).toString('hex'), v.head, `head of ${k} sbn ${v.sbn} esi ${v.esi}`);
      assert.equal(createHash('sha256').update(sym).digest('hex'), v.sha256, `sha256 of ${k} sbn ${v.sbn} esi ${v.esi}`);
      checked++;
    }
    assert.equal(checked, 98);
  } finally {
    setKernel(saved);
  }
}

test('all 98 KAT symbols reproduced (default kernel)', () => runAll(kernel()));
