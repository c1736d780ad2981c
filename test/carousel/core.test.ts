import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blake3 } from '@noble/hashes/blake3.js';
import {
  CarouselReceiver,
  CarouselSender,
  ChunkBitmap,
  SeqLossEstimator,
  TokenBucket,
  decodeState,
  encodeState,
} from '../../src/carousel/index.js';
import { CHUNK_SIZE, decode, encode } from '../../src/wire/iotupd-frame.js';
import { DecodeError } from '../../src/errors.js';
import { SimDevice, prng, randomBytes } from './sim.js';

function senderFor(file: Uint8Array, opts: { startOffset?: number; passes?: number; firstSeq?: number } = {}): CarouselSender {
  return new CarouselSender({
    size: file.length,
    hash: blake3(file),
    readChunk: (offset, length) => file.subarray(offset, offset + length),
    ...opts,
  });
}

test('one lossless pass delivers the file exactly, chunk by chunk, with no loss estimated', () => {
  const file = randomBytes(50 * CHUNK_SIZE + 77, 1);
  const tx = senderFor(file, { passes: 1 });
  const dev = new SimDevice(file.length);
  let frames = 0;
  for (let f = tx.next(); f; f = tx.next()) {
    assert.equal(f.length, 1246);
    dev.deliver(f);
    frames += 1;
  }
  assert.equal(frames, 51);
  assert.ok(tx.done);
  assert.ok(dev.done);
  assert.deepEqual(dev.disk, file);
  const s = dev.rx.stats();
  assert.equal(s.written, 51);
  assert.equal(s.loss.lost, 0);
  assert.equal(s.loss.estimate, 0);
});

test('seeded 10 % loss, 5 % duplicates and reordering: file intact, loss estimate close to the real loss', () => {
  const file = randomBytes(300 * CHUNK_SIZE + 5, 2);
  const tx = senderFor(file);
  const dev = new SimDevice(file.length);
  const rnd = prng(42);
  const window: Uint8Array[] = [];
  let sent = 0;
  let lost = 0;
  while (!dev.done) {
    const f = tx.next()!;
    sent += 1;
    assert.ok(sent < 20 * 301, 'completes within 20 passes');
    if (rnd() < 0.1) {
      lost += 1;
      continue;
    }
    window.push(f);
    if (rnd() < 0.05) window.push(f);
    // Reorder: release a random frame of the last 8.
    if (window.length >= 8) dev.deliver(window.splice(Math.floor(rnd() * window.length), 1)[0]!);
  }
  assert.deepEqual(dev.disk, file);
  const s = dev.rx.stats();
  assert.ok(s.duplicate > 0);
  assert.equal(s.written, 301);
  const real = lost / sent;
  assert.ok(Math.abs(s.loss.estimate - real) < 0.02, `estimate ${s.loss.estimate} vs real ${real}`);
  assert.ok(s.loss.reordered > 0);
});

test('a late joiner starting mid-pass completes after exactly one pass of frames', () => {
  const file = randomBytes(40 * CHUNK_SIZE, 3);
  const tx = senderFor(file);
  for (let i = 0; i < 57; i++) tx.next(); // joins at chunk 17 of the second pass
  const dev = new SimDevice(file.length);
  let n = 0;
  while (!dev.done && n < 1000) {
    dev.deliver(tx.next()!);
    n += 1;
  }
  assert.equal(n, 40);
  assert.deepEqual(dev.disk, file);
});

test('two senders at different offsets fill the file in half the frames each; seq tracked per sender', () => {
  const file = randomBytes(100 * CHUNK_SIZE + 1, 4);
  const a = senderFor(file, { startOffset: 0 });
  const b = senderFor(file, { startOffset: 50 * CHUNK_SIZE + 100, firstSeq: 40000 }); // rounds down to chunk 50
  assert.equal(b.startChunk, 50);
  const dev = new SimDevice(file.length);
  let rounds = 0;
  while (!dev.done && rounds < 1000) {
    dev.deliver(a.next()!, 'fe80::a');
    if (!dev.done) dev.deliver(b.next()!, 'fe80::b');
    rounds += 1;
  }
  assert.equal(rounds, 51); // 101 chunks: a sends 0..50, b sends 50..100
  assert.deepEqual(dev.disk, file);
  const s = dev.rx.stats();
  assert.equal(s.loss.lost, 0);
  assert.equal(s.loss.resyncs, 0);
});

test('with two senders and 10 % loss, only per-sender seq tracking measures the loss', () => {
  const file = randomBytes(400 * CHUNK_SIZE, 15);
  const estimate = (keyed: boolean): { est: number; real: number } => {
    const a = senderFor(file, { firstSeq: 0 });
    const b = senderFor(file, { startOffset: 200 * CHUNK_SIZE, firstSeq: 300 });
    const rx = new CarouselReceiver();
    const rnd = prng(16);
    let lost = 0;
    for (let i = 0; i < 2000; i++) {
      for (const [tx, src] of [[a, 'a'], [b, 'b']] as const) {
        const f = tx.next()!;
        if (rnd() < 0.1) lost += 1;
        else rx.push(f, keyed ? src : undefined);
      }
    }
    return { est: rx.stats().loss.estimate, real: lost / 4000 };
  };
  const keyed = estimate(true);
  assert.ok(Math.abs(keyed.est - keyed.real) < 0.01, `keyed ${keyed.est} vs ${keyed.real}`);
  // One shared counter: each sender's frames look late to the other and cancel its gaps.
  assert.ok(estimate(false).est < keyed.real / 2);
});

test('sender: passes, seq wrap at 65536, start offset wraps round the end', () => {
  const file = randomBytes(3 * CHUNK_SIZE + 10, 5);
  const tx = senderFor(file, { passes: 2, firstSeq: 65534, startOffset: 2 * CHUNK_SIZE });
  const frames: ReturnType<typeof decode>[] = [];
  for (let f = tx.next(); f; f = tx.next()) frames.push(decode(f));
  assert.deepEqual(frames.map((f) => f.seq), [65534, 65535, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual(frames.map((f) => f.offset / CHUNK_SIZE), [2, 3, 0, 1, 2, 3, 0, 1]);
  assert.deepEqual(frames.map((f) => f.data.length), [1194, 10, 1194, 1194, 1194, 10, 1194, 1194]);
  assert.equal(tx.next(), undefined);
  assert.throws(() => senderFor(file, { startOffset: file.length }), RangeError);
  assert.throws(() => senderFor(file, { passes: 0 }), RangeError);
});

test('loss estimator: wrap-around, duplicates, late frames and restarts', () => {
  const e = new SeqLossEstimator();
  for (const s of [65533, 65534, 0, 1, 1, 3]) e.observe(s); // 65535 and 2 missing, one duplicate
  assert.equal(e.stats().lost, 2);
  e.observe(2); // late: cancels one loss
  assert.equal(e.stats().lost, 1);
  assert.equal(e.stats().reordered, 1);
  e.observe(30000); // restart, not 26000 lost frames
  assert.equal(e.stats().lost, 1);
  assert.equal(e.stats().resyncs, 1);
  e.observe(5, 'other'); // another sender starts its own count
  e.observe(7, 'other');
  assert.equal(e.stats().lost, 2);
});

test('resume: a receiver rebuilt from a state file only writes the chunks it lacked', () => {
  const file = randomBytes(64 * CHUNK_SIZE + 300, 6);
  const tx = senderFor(file);
  const rnd = prng(7);
  const first = new SimDevice(file.length);
  for (let i = 0; i < 65; i++) {
    const f = tx.next()!;
    if (rnd() < 0.5) first.deliver(f);
  }
  const had = first.rx.bitmap!.count;
  assert.ok(had > 10 && had < 60);
  const id = first.rx.identity!;
  const state = decodeState(encodeState({ size: id.size, hash: id.hash, present: first.rx.bitmap!.bytes }));
  const second = new SimDevice(file.length, new CarouselReceiver({ expect: state, present: state.present }));
  second.disk.set(first.disk);
  for (let i = 0; !second.done && i < 1000; i++) second.deliver(tx.next()!);
  assert.equal(second.writes, 65 - had);
  assert.deepEqual(second.disk, file);
});

test('resume state codec refuses torn, corrupted or inconsistent states', () => {
  const s = { size: 20 * CHUNK_SIZE, hash: new Uint8Array(32).fill(3), present: new Uint8Array([0xff, 0x0f, 0x0a]) };
  const bytes = encodeState(s);
  assert.deepEqual(decodeState(bytes), s);
  for (const bad of [bytes.subarray(0, bytes.length - 1), new Uint8Array(10), Uint8Array.from(bytes, (b, i) => (i === 70 ? b ^ 1 : b))]) {
    assert.throws(() => decodeState(bad), DecodeError);
  }
  const wrongMagic = Uint8Array.from(bytes);
  wrongMagic[0] = 0;
  assert.throws(() => decodeState(wrongMagic), DecodeError);
  assert.throws(() => encodeState({ ...s, present: new Uint8Array(2) }), RangeError);
  // Bits beyond the last chunk are ignored, so a bitmap cannot count phantom chunks.
  assert.equal(new ChunkBitmap(20, new Uint8Array([0xff, 0xff, 0xff])).count, 20);
});

test('malformed, foreign and inconsistent frames are dropped and counted, never written', () => {
  const file = randomBytes(10 * CHUNK_SIZE, 8);
  const other = randomBytes(10 * CHUNK_SIZE, 9);
  const hash = blake3(file);
  const tx = senderFor(file);
  const dev = new SimDevice(file.length);
  dev.deliver(tx.next()!); // the first valid frame pins this file
  const rnd = prng(10);
  // Random garbage of random lengths (a 1246-byte random datagram almost never decodes).
  for (let i = 0; i < 500; i++) {
    const g = randomBytes(Math.floor(rnd() * 1400), 100 + i);
    assert.notEqual(dev.deliver(g).kind, 'write');
  }
  const frame = (o: { size?: number; offset: number; data: Uint8Array; h?: Uint8Array }) =>
    encode({ seq: 1, size: o.size ?? file.length, offset: o.offset, hash: o.h ?? hash, data: o.data });
  // Another file (other hash), even at a chunk we lack: foreign.
  assert.deepEqual(dev.deliver(frame({ offset: CHUNK_SIZE, data: other.subarray(CHUNK_SIZE, 2 * CHUNK_SIZE), h: blake3(other) })).kind, 'dropped');
  // Same hash, other size: size-changed.
  const r = dev.deliver(frame({ size: 11 * CHUNK_SIZE, offset: CHUNK_SIZE, data: other.subarray(0, CHUNK_SIZE) }));
  assert.deepEqual(r.kind === 'dropped' && r.reason, 'size-changed');
  // Hand-made impossible headers.
  const bad = frame({ offset: CHUNK_SIZE, data: other.subarray(0, CHUNK_SIZE) });
  const v = new DataView(bad.buffer, bad.byteOffset);
  v.setBigUint64(10, 1000n);
  assert.deepEqual((dev.deliver(bad) as { reason: string }).reason, 'offset');
  v.setBigUint64(10, BigInt(CHUNK_SIZE));
  v.setUint16(18, 1195);
  assert.deepEqual((dev.deliver(bad) as { reason: string }).reason, 'length');
  assert.deepEqual((dev.deliver(new Uint8Array(1247)) as { reason: string }).reason, 'long');
  assert.deepEqual((dev.deliver(new Uint8Array(100)) as { reason: string }).reason, 'short');

  const s = dev.rx.stats();
  assert.equal(s.written, 1);
  assert.equal(s.dropped.foreign, 1);
  assert.equal(s.dropped['size-changed'], 1);
  assert.ok(s.dropped.short >= 400);
  assert.ok(s.dropped.long > 0);
  assert.equal(s.chunks, 1);
  assert.ok(dev.disk.subarray(CHUNK_SIZE).every((b) => b === 0), 'nothing but chunk 0 written');
  // The genuine carousel still completes.
  for (let i = 0; !dev.done && i < 1000; i++) dev.deliver(tx.next()!);
  assert.deepEqual(dev.disk, file);
});

test('the first file seen wins; a pinned (resumed) receiver ignores a different file entirely', () => {
  const a = randomBytes(5 * CHUNK_SIZE, 11);
  const b = randomBytes(5 * CHUNK_SIZE, 12);
  const dev = new SimDevice(a.length, new CarouselReceiver({ expect: { size: a.length, hash: blake3(a) } }));
  const tb = senderFor(b, { passes: 2 });
  for (let f = tb.next(); f; f = tb.next()) assert.equal(dev.deliver(f).kind, 'dropped');
  assert.equal(dev.rx.stats().dropped.foreign, 10);
  assert.equal(dev.writes, 0);
});

test('a whole-file hash mismatch marks every chunk missing and the next pass repairs the file', () => {
  const file = randomBytes(30 * CHUNK_SIZE + 9, 13);
  const tx = senderFor(file);
  const dev = new SimDevice(file.length);
  let corrupted = false;
  dev.corrupt = (offset, data) => {
    if (offset !== 7 * CHUNK_SIZE || corrupted) return data;
    corrupted = true;
    const bad = Uint8Array.from(data);
    bad[5]! ^= 0x80;
    return bad;
  };
  let frames = 0;
  while (!dev.done && frames < 1000) {
    dev.deliver(tx.next()!);
    frames += 1;
  }
  assert.equal(frames, 62); // one pass, a failed check, then one full pass again
  assert.equal(dev.verifications, 2);
  assert.equal(dev.rx.stats().hashFailures, 1);
  assert.deepEqual(dev.disk, file);
});

test('an empty file arrives as one empty frame; the tail frame of the original is harmless', () => {
  const empty = new Uint8Array(0);
  assert.equal(Buffer.from(blake3(empty)).toString('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  const dev = new SimDevice(0);
  const tx = senderFor(empty, { passes: 1 });
  assert.equal(dev.deliver(tx.next()!).kind, 'empty');
  assert.equal(tx.next(), undefined);
  assert.ok(dev.done);

  const file = randomBytes(2 * CHUNK_SIZE, 14);
  const dev2 = new SimDevice(file.length);
  const tail = encode({ seq: 9, size: file.length, offset: file.length, hash: blake3(file), data: new Uint8Array(0) });
  assert.equal(dev2.deliver(tail).kind, 'empty');
  assert.equal(dev2.rx.complete, false);
});

test('token bucket paces to the rate with the clock passed in', () => {
  const tb = new TokenBucket(8_000_000, 2000, 0); // 1000 bytes per ms
  assert.equal(tb.take(1500, 0), 0);
  assert.equal(tb.take(1500, 0), 1); // 500 left, 1000 more needed
  assert.equal(tb.take(1500, 1), 0);
  assert.equal(tb.take(1500, 100), 0); // refills only up to the burst
  assert.equal(tb.take(1500, 100), 1);
  // Over a long run the byte count matches the rate.
  const t2 = new TokenBucket(10_000_000, 1294 * 4, 0);
  let now = 0;
  let bytes = 0;
  for (let guard = 0; now < 1000; guard++) {
    assert.ok(guard < 100_000);
    const wait = t2.take(1294, now);
    if (wait === 0) bytes += 1294;
    else now += wait;
  }
  assert.ok(Math.abs(bytes - 1_250_000) <= 1294 * 5, `${bytes} bytes in 1 s at 10 Mbit/s`);
});
