import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { fileStoreOf, finalReceiver, makeObject, simulate, type SimReceiver } from './sim.js';

// A 300 KB object in symbols of 256 bytes, at most 200 symbols per block: 6 source blocks of the
// real RFC 6330 code. Small enough for a fast suite, large enough for several blocks.
const OBJ = makeObject(300_000, 256, 200, 1);
const K_TOTAL = Math.ceil(300_000 / 256);

function assertIntact(res: ReturnType<typeof simulate>, i: number): void {
  assert.notEqual(res.doneAtMs[i], undefined, `receiver ${i} did not finish`);
  assert.deepEqual(new Uint8Array(readFileSync(res.outs[i] as string)), OBJ.data, `receiver ${i} wrote a wrong file`);
}

test('random loss 0/10/30/50 %: every receiver intact, reception overhead within 3 %', () => {
  const losses = [0, 0.1, 0.3, 0.5];
  const res = simulate(OBJ, [{}], losses.map((loss) => ({ link: { loss } })), { seed: 7 });
  try {
    losses.forEach((loss, i) => {
      assertIntact(res, i);
      const r = finalReceiver(res, i);
      assert.ok(r);
      assert.ok(r.overhead >= 0 && r.overhead <= 0.03, `overhead ${r.overhead} at loss ${loss}`);
      assert.equal(r.stats.malformed, 0);
      assert.equal(r.stats.duplicate, 0);
      if (loss === 0) {
        // No loss: every source symbol arrives, nothing to decode.
        assert.equal(r.stats.used, K_TOTAL);
        assert.equal(r.stats.decodeFailures, 0);
      }
    });
    // The lossless receiver finished first; 50 % loss needs about twice the time.
    assert.ok((res.doneAtMs[3] as number) > (res.doneAtMs[0] as number) * 1.5);
  } finally {
    res.cleanup();
  }
});

test('burst loss (Gilbert-Elliott, mean burst 20 packets, ~20 % loss) is as good as random loss', () => {
  const res = simulate(OBJ, [{}], [{ link: { burst: { enter: 0.0125, leave: 0.05 } } }], { seed: 11 });
  try {
    assertIntact(res, 0);
    const r = finalReceiver(res, 0);
    assert.ok(r && r.overhead <= 0.03, `overhead ${r?.overhead}`);
    assert.ok(r && r.stats.received < K_TOTAL * 1.1, 'round-robin interleaving spreads each burst over all blocks');
  } finally {
    res.cleanup();
  }
});

test('reordering, duplication and delay: intact, duplicates counted, not stored', () => {
  const res = simulate(OBJ, [{}], [{ link: { loss: 0.05, duplicate: 0.2, delayMs: 30, jitterMs: 20 } }], { seed: 3 });
  try {
    assertIntact(res, 0);
    const r = finalReceiver(res, 0);
    assert.ok(r);
    assert.ok(r.stats.duplicate > 50, `duplicates ${r.stats.duplicate}`);
    assert.ok(r.overhead <= 0.03);
  } finally {
    res.cleanup();
  }
});

test('late join: a receiver joining halfway through finishes from what it sees afterwards', () => {
  const res = simulate(OBJ, [{}], [{ link: {} }, { link: { joinAtMs: 20, loss: 0.1 } }], { seed: 5 });
  try {
    assertIntact(res, 0);
    assertIntact(res, 1);
    const r = finalReceiver(res, 1);
    assert.ok(r && r.overhead <= 0.03);
    assert.ok((res.doneAtMs[1] as number) > (res.doneAtMs[0] as number));
  } finally {
    res.cleanup();
  }
});

test('sender restart: ESIs start over, the receiver counts duplicates and still finishes', () => {
  const res = simulate(OBJ, [{ restartAtMs: 15 }], [{ link: { loss: 0.2 } }], { seed: 9 });
  try {
    assertIntact(res, 0);
    const r = finalReceiver(res, 0);
    assert.ok(r && r.stats.duplicate > 0);
  } finally {
    res.cleanup();
  }
});

test('two cooperating senders send disjoint ESIs and together finish about twice as fast', () => {
  const one = simulate(OBJ, [{}], [{ link: {} }], { seed: 21 });
  const two = simulate(OBJ, [{ options: { senderIndex: 0, senders: 2 } }, { options: { senderIndex: 1, senders: 2 } }], [{ link: { loss: 0.1 } }], { seed: 21 });
  try {
    assertIntact(two, 0);
    const r = finalReceiver(two, 0);
    assert.ok(r);
    assert.equal(r.stats.duplicate, 0, 'cooperating senders never send the same symbol');
    assert.ok((two.doneAtMs[0] as number) < (one.doneAtMs[0] as number) * 0.7);
  } finally {
    one.cleanup();
    two.cleanup();
  }
});

test('twenty receivers with different loss, delay and join times all finish intact', () => {
  const specs: SimReceiver[] = Array.from({ length: 20 }, (_, i) => ({
    link: { loss: (i % 5) * 0.08, delayMs: i, jitterMs: i % 3, joinAtMs: (i % 4) * 5, duplicate: i % 7 === 0 ? 0.1 : 0 },
  }));
  const res = simulate(OBJ, [{}], specs, { seed: 99 });
  try {
    for (let i = 0; i < specs.length; i++) {
      assertIntact(res, i);
      assert.ok((finalReceiver(res, i)?.overhead ?? 1) <= 0.03);
    }
  } finally {
    res.cleanup();
  }
});

test('a receiver killed mid-transfer resumes from its spool and needs fewer new symbols', () => {
  const res = simulate(OBJ, [{}], [{ link: { loss: 0.1, crashAtMs: 25, downMs: 10 } }], { seed: 13 });
  try {
    assertIntact(res, 0);
    const instances = res.receivers.filter((r) => fileStoreOf(r).out === res.outs[0]);
    assert.equal(instances.length, 2);
    const second = instances[1];
    assert.ok(second);
    assert.ok(second.stats.received < K_TOTAL * 0.9, `second run received ${second.stats.received} of ${K_TOTAL}: spool not reused`);
    assert.ok(!existsSync(fileStoreOf(second).dir), 'spool removed after success');
  } finally {
    res.cleanup();
  }
});
