// Second oracle: the npm `raptorq` 1.7.24 (WASM build of the Rust crate), only where K = K'
// (it labels repair symbols differently from RFC 6330 when K' > K; see docs/raptorq.md, "RFC
// ambiguities and decisions").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockDecoder, BlockEncoder, blockParams } from '../../src/fec/index.js';
import { loadNpmRaptorq } from './npm-raptorq.js';
import { prng, randomBytes } from './helpers.js';

test('npm raptorq: identical packets for K = K\', and each decodes the other', async (ctx) => {
  const rq = await loadNpmRaptorq();
  if (!rq) return ctx.skip('node_modules/raptorq not installed');
  const rnd = prng(21);
  for (const k of [10, 101, 1002]) {
    assert.equal(blockParams(k).kPrime, k, `K=${k} is a table K'`);
    const t = 1280;
    const data = randomBytes(k * t, rnd);
    const theirs = rq.Encoder.with_defaults(data, t);
    const packets = theirs.encode(k + 5);
    theirs.free();
    const ours = new BlockEncoder(data, k, t, 1, 8);
    assert.equal(packets.length, 2 * k + 5);
    for (const p of packets) {
      assert.equal(p.length, 4 + t);
      assert.equal(p[0], 0, 'single source block');
      const esi = (p[1]! << 16) | (p[2]! << 8) | p[3]!;
      assert.deepEqual(p.subarray(4), ours.symbol(esi), `K=${k} ESI ${esi}`);
    }
    // Their repair packets -> our decoder.
    const dec = new BlockDecoder(k, t, data.length, 1, 8);
    let done = false;
    for (const p of packets.slice(k + 2)) done = dec.add((p[1]! << 16) | (p[2]! << 8) | p[3]!, p.subarray(4));
    assert.ok(done);
    assert.deepEqual(dec.result(), data);
    // Our repair symbols (far ESIs) -> their decoder.
    const td = rq.Decoder.with_defaults(BigInt(data.length), t);
    let out: Uint8Array | undefined;
    for (let i = 0; i < k + 2 && !out; i++) {
      const esi = k + 5000 + 3 * i;
      const pkt = new Uint8Array(4 + t);
      pkt.set([0, esi >>> 16, (esi >>> 8) & 0xff, esi & 0xff]);
      pkt.set(ours.symbol(esi), 4);
      out = td.decode(pkt);
    }
    td.free();
    assert.deepEqual(out, data);
  }
});
