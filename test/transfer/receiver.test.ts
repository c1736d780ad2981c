import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, openSync, writeSync, readSync, closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeObject, newSender, rng } from './sim.js';
import { FountainReceiver } from '../../src/transfer/receiver.js';
import { Spool } from '../../src/transfer/spool.js';
import { FountainSender } from '../../src/transfer/sender.js';
import { BytesSource } from '../../src/transfer/source.js';
import { InlineDecoder, WorkerDecoder, syncDecoder, type DecodeExecutor, type DecodeJob, type DecodeResult } from '../../src/transfer/decoding.js';
import { hashBytes } from '../../src/transfer/object.js';
import { decodePacket, encodeDescription, HashAlgorithm } from '../../src/wire/fountain.js';
import { blockPartition, encodeOti, otiFor } from '../../src/fec/index.js';
import { StorageError } from '../../src/errors.js';

const OBJ = makeObject(120_000, 256, 100, 2);
const BLOCKS_OF_OBJ = blockPartition(OBJ.oti).length;
const LAST_BLOCK_K = (blockPartition(OBJ.oti).at(-1) as { k: number }).k;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'iotupd-recv-'));
}

/** Symbol datagrams from a sender, in sending order (descriptions included). */
function stream(sender: FountainSender, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let now = 0;
  while (out.length < count) {
    const s = sender.next(now);
    if ('done' in s) break;
    if ('wait' in s) now += s.wait;
    else out.push(s.datagram);
  }
  return out;
}

function feedUntilDone(r: FountainReceiver, packets: Iterable<Uint8Array>): boolean {
  for (const p of packets) if (r.push(p) === 'complete') return true;
  return false;
}

test('resume after a crash does not redo finished blocks', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const sender = newSender(OBJ);
    const packets = stream(sender, 4000);
    const r1 = new FountainReceiver({ out });
    // Feed a prefix with 30 % loss until at least one block but not all are done.
    const lose = rng(4);
    let i = 0;
    for (; i < packets.length; i++) {
      if (lose() < 0.3) continue;
      r1.push(packets[i] as Uint8Array);
      const p = r1.progress();
      if (p.blocksDone >= 1) break;
    }
    const before = r1.progress();
    assert.ok(before.blocksDone >= 1 && before.blocksDone < before.blocks, JSON.stringify(before));
    r1.crash(); // like SIGKILL: buffered spool records are lost, durable ones stay
    const r2 = new FountainReceiver({ out });
    assert.equal(r2.stats.resumedBlocks, before.blocksDone);
    assert.ok(r2.progress().have > 0);
    assert.ok(feedUntilDone(r2, packets.slice(i + 1)));
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
    assert.equal(r2.stats.decodeAttempts - r2.stats.decodeFailures, before.blocks - before.blocksDone, 'finished blocks not decoded again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a finished block whose bytes never reached the disk (power loss: no fdatasync) is rebuilt, not trusted', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const packets = stream(newSender(OBJ), 4000);
    const lose = rng(5);
    const kept = packets.filter(() => lose() >= 0.2);
    const r1 = new FountainReceiver({ out });
    let i = 0;
    for (; i < kept.length && r1.progress().blocksDone < 1; i++) r1.push(kept[i] as Uint8Array);
    const before = r1.progress();
    assert.ok(before.blocksDone >= 1 && before.blocksDone < before.blocks, JSON.stringify(before));
    r1.crash();
    // The journal says block 0 is done, but its bytes are gone: zero the whole block in data.part.
    const [first] = blockPartition(OBJ.oti);
    const dfd = openSync(join(r1.spoolDir, 'data.part'), 'r+');
    writeSync(dfd, new Uint8Array(first?.length ?? 0), 0, first?.length ?? 0, 0);
    closeSync(dfd);
    const r2 = new FountainReceiver({ out });
    assert.equal(r2.stats.resumedBlocks, before.blocksDone - 1, 'block 0 is not trusted');
    assert.ok(r2.stats.corruptRecords >= 1);
    assert.ok(feedUntilDone(r2, kept.slice(i).concat(kept.slice(0, i))), 'block 0 is collected again');
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
    assert.equal(r2.stats.hashMismatches, 0, 'caught by the BLOCK_DONE checksum, not by the whole-object hash');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corrupted spool records (symbols file and data.part) are detected and the blocks fetch more symbols', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const packets = stream(newSender(OBJ), 6000);
    const lose = rng(8);
    const kept = packets.filter(() => lose() >= 0.4);
    const r1 = new FountainReceiver({ out });
    // Half the needed symbols, with repair symbols in the spool because of the loss.
    let n = 0;
    for (; n < kept.length && (!r1.info || r1.progress().have < r1.progress().needed * 0.6); n++) r1.push(kept[n] as Uint8Array);
    assert.equal(r1.progress().blocksDone, 0);
    r1.close();
    const spool = r1.spoolDir;
    const symbols = join(spool, 'symbols');
    assert.ok(statSync(symbols).size > 0, 'some symbols were spooled');
    // Flip bytes in every third spooled record and in the first source symbols of data.part.
    const recSize = 16 + OBJ.oti.symbolSize;
    const fd = openSync(symbols, 'r+');
    const count = statSync(symbols).size / recSize;
    for (let k = 0; k < count; k += 3) writeSync(fd, Uint8Array.of(0x5a), 0, 1, k * recSize + 20 + (k % 200));
    closeSync(fd);
    const dfd = openSync(join(spool, 'data.part'), 'r+');
    for (let k = 0; k < 50; k++) writeSync(dfd, Uint8Array.of(0xa5, 0x5a), 0, 2, k * 256 + 7);
    closeSync(dfd);
    const r2 = new FountainReceiver({ out });
    assert.ok(r2.stats.corruptRecords >= count / 3, `corrupt ${r2.stats.corruptRecords}`);
    assert.ok(feedUntilDone(r2, kept.slice(n)), 'finished with fresh symbols');
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
    assert.equal(r2.stats.hashMismatches, 0, 'corruption caught by the record checksums, before the decoder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a torn spool tail (record cut by a crash) is ignored', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const packets = stream(newSender(OBJ), 3000).filter((_, i) => i % 3 !== 0);
    const r1 = new FountainReceiver({ out });
    for (let i = 0; i < 300; i++) r1.push(packets[i] as Uint8Array);
    r1.close();
    const symbols = join(r1.spoolDir, 'symbols');
    writeFileSync(symbols, new Uint8Array(100), { flag: 'a' });
    const r2 = new FountainReceiver({ out });
    assert.ok(feedUntilDone(r2, packets.slice(300)));
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the spool starts writeback of data.part by the pages its writes dirty, not their bytes', async () => {
  const dir = tmp();
  try {
    const spool = new Spool(join(dir, 'spool'), 1, 1184);
    // 4096 short writes 8 KiB apart (a decoded block's missing symbols): 400 KB of bytes that
    // dirty 4096 pages, 16 MiB, the writeback threshold: one background fdatasync.
    const bytes = new Uint8Array(100).fill(7);
    for (let i = 0; i < 4095; i++) spool.writeData(i * 8192, bytes);
    assert.equal(spool.writebacks, 0);
    spool.writeData(4095 * 8192, bytes);
    assert.equal(spool.writebacks, 1);
    // A write across a page boundary dirties two pages.
    for (let i = 0; i < 2048; i++) spool.writeData(i * 8192 + 4090, bytes);
    await new Promise((r) => setTimeout(r, 200)); // the first fdatasync has ended
    spool.writeData(0, bytes);
    assert.equal(spool.writebacks, 2);
    spool.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzzed datagrams never crash the receiver and never produce a wrong file', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const r = new FountainReceiver({ out });
    const packets = stream(newSender(OBJ), 5000);
    const rand = rng(77);
    let done = false;
    let fuzzed = 0;
    for (let i = 0; i < packets.length && !done; i++) {
      const p = packets[i] as Uint8Array;
      // Before each genuine packet, one hostile one: random bytes, a truncation, or bit flips in the header.
      const kind = Math.floor(rand() * 3);
      let bad: Uint8Array;
      if (kind === 0) bad = Uint8Array.from({ length: Math.floor(rand() * 1400) }, () => Math.floor(rand() * 256));
      else if (kind === 1) bad = p.subarray(0, Math.floor(rand() * p.length));
      else {
        bad = new Uint8Array(p);
        for (let f = 0; f < 3; f++) bad[Math.floor(rand() * 20)]! ^= 1 << Math.floor(rand() * 8);
      }
      fuzzed++;
      if (r.push(bad) === 'complete') done = true;
      if (!done && r.push(p) === 'complete') done = true;
    }
    assert.ok(done);
    assert.ok(r.stats.malformed + r.stats.foreign > fuzzed / 3, JSON.stringify(r.stats));
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('poisoned symbols (valid headers, wrong data) end in a hash mismatch and a restart, never a wrong file', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const r = new FountainReceiver({ out });
    const packets = stream(newSender(OBJ), 8000);
    let done = false;
    for (let i = 0; i < packets.length && !done; i++) {
      let p = packets[i] as Uint8Array;
      const q = decodePacket(p);
      // Early symbols with flipped data (what an injector without keys can do).
      if (i < 1000 && q.kind === 'symbol' && i % 7 === 0) {
        p = new Uint8Array(p);
        p[p.length - 1]! ^= 0xff;
      }
      done = r.push(p) === 'complete';
    }
    assert.ok(done);
    assert.ok(r.stats.hashMismatches >= 1, 'the poisoned decode was caught');
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('conflicting descriptions and packets of other objects are counted and ignored', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const r = new FountainReceiver({ out });
    const a = stream(newSender(OBJ), 3000);
    const other = makeObject(50_000, 256, 100, 3);
    const b = stream(newSender(other), 300);
    // Same object id as A, different hash: the first description wins.
    const first = decodePacket(a[0] as Uint8Array);
    assert.equal(first.kind, 'description');
    const conflicting = encodeDescription(
      { objectId: first.objectId },
      { oti: encodeOti(OBJ.oti), size: OBJ.data.length, hashAlgorithm: 1, hash: hashBytes(1, new Uint8Array(1)), name: 'evil' },
    );
    r.push(a[0] as Uint8Array);
    r.push(conflicting);
    for (const p of b) r.push(p);
    assert.ok(feedUntilDone(r, a.slice(1)));
    assert.equal(r.stats.conflicts, 1);
    assert.equal(r.stats.foreign, b.length);
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--name / --object-id select one of several objects on the channel', () => {
  const dir = tmp();
  try {
    const other = makeObject(50_000, 256, 100, 3);
    const sa = newSender(OBJ, { name: 'a.bin' });
    const sb = newSender(other, { name: 'b.bin' });
    const a = stream(sa, 3000);
    const b = stream(sb, 3000);
    const mixed: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) mixed.push(b[i] as Uint8Array, a[i] as Uint8Array);
    const byName = new FountainReceiver({ out: join(dir, 'x'), name: 'a.bin' });
    assert.ok(feedUntilDone(byName, mixed));
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'x'))), OBJ.data);
    const byId = new FountainReceiver({ out: join(dir, 'y'), objectId: sb.objectId });
    assert.ok(feedUntilDone(byId, mixed));
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'y'))), other.data);
    const first = new FountainReceiver({ out: join(dir, 'z') });
    assert.ok(feedUntilDone(first, mixed));
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'z'))), other.data, 'first object seen');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a description whose object id does not match its contents is malformed', () => {
  const dir = tmp();
  try {
    const r = new FountainReceiver({ out: join(dir, 'o') });
    const desc = new Uint8Array(stream(newSender(OBJ), 1)[0] as Uint8Array);
    desc[8]! ^= 1;
    r.push(desc);
    assert.equal(r.stats.malformed, 1);
    assert.equal(r.info, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unwritable target: a clear StorageError before anything is received', () => {
  const dir = tmp();
  try {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    assert.throws(() => new FountainReceiver({ out: join(file, 'sub', 'o.bin') }), (e: unknown) => e instanceof StorageError && e.code === 'ERR_STORAGE_PERMISSION');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sender refuses inconsistent options', () => {
  assert.throws(() => new FountainSender({ oti: OBJ.oti, source: new BytesSource(OBJ.data.subarray(1)), hash: OBJ.hash }));
  assert.throws(() => newSender(OBJ, { senderIndex: 2, senders: 2 }));
  assert.throws(() => newSender(OBJ, { rateBps: 0 }));
});

// Full disk, for real: a 64 KiB tmpfs in a private mount namespace (root only).
const child = join(fileURLToPath(new URL('.', import.meta.url)), 'full-disk-child.js');
const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
test('full disk: receiver stops with ERR_STORAGE_FULL, no output file appears', { skip: canMount ? false : 'needs root and unshare -m for a private tmpfs' }, () => {
  const dir = tmp();
  try {
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs "${dir}" && "${process.execPath}" "${child}" "${dir}"`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code?: string; outExists?: boolean; files?: string[] };
    assert.equal(result.code, 'ERR_STORAGE_FULL');
    assert.equal(result.outExists, false);
    assert.deepEqual(readdirSync(dir), [], 'the tmpfs lived only in the private mount namespace');
    assert.ok(!existsSync(join(dir, 'o.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkBlock (per-block commitment) rejects a poisoned block before it is written; the block is collected again', () => {
  const dir = tmp();
  try {
    const blocks = blockPartition(OBJ.oti);
    const digests = blocks.map((b) => Buffer.from(hashBytes(1, OBJ.data.subarray(b.offset, b.offset + b.length))).toString('hex'));
    let checks = 0;
    const r = new FountainReceiver({
      out: join(dir, 'o.bin'),
      checkBlock: (sbn, bytes) => {
        checks++;
        return Buffer.from(hashBytes(1, bytes)).toString('hex') === digests[sbn];
      },
    });
    const packets = stream(newSender(OBJ), 8000);
    let done = false;
    for (let i = 0; i < packets.length && !done; i++) {
      let p = packets[i] as Uint8Array;
      const q = decodePacket(p);
      // Poison one source symbol of block 0 and one repair symbol of block 1 in the first pass.
      if (q.kind === 'symbol' && ((q.symbol.sbn === 0 && q.symbol.esi === 5) || (q.symbol.sbn === 1 && q.symbol.esi === 120 && i < 1000))) {
        p = new Uint8Array(p);
        p[p.length - 1]! ^= 0x01;
      }
      done = r.push(p) === 'complete';
    }
    assert.ok(done);
    assert.ok(r.stats.blocksRejected >= 1, JSON.stringify(r.stats));
    assert.equal(r.stats.hashMismatches, 0, 'caught per block, before the whole-object hash');
    assert.ok(checks >= blocks.length);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'o.bin'))), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [how, decoder] of [
  // Like WorkerDecoder's recycled job buffers, but always dirty (no decodeInPlace: this path).
  ['job buffers always dirty', { decode: syncDecoder.decode, close: syncDecoder.close, buffer: (bytes: number) => new Uint8Array(bytes).fill(0xa5) } as DecodeExecutor],
  // In place: each block's arena is the pooled memory of the block decoded before it.
  ['in-place arenas reused from the previous block', syncDecoder],
] as const) {
  test(`reused memory (${how}) may hold old bytes: the short last source symbol is still zero-padded`, () => {
    const dir = tmp();
    try {
      assert.ok(OBJ.data.length % OBJ.oti.symbolSize !== 0, 'the object ends with a short symbol');
      const r = new FountainReceiver({ out: join(dir, 'o.bin'), decoder });
      const lose = rng(12);
      // Lose 20 % but keep the final (short) source symbol, so that the last block's decode uses it.
      const packets = stream(newSender(OBJ), 6000).filter((p) => {
        const d = decodePacket(p);
        if (d.kind === 'symbol' && d.symbol.sbn === BLOCKS_OF_OBJ - 1 && d.symbol.esi === LAST_BLOCK_K - 1) return true;
        return lose() >= 0.2;
      });
      assert.ok(feedUntilDone(r, packets));
      assert.equal(r.stats.hashMismatches, 0);
      assert.ok(r.stats.decodeAttempts > r.stats.decodeFailures, 'blocks were decoded, not just copied');
      assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'o.bin'))), OBJ.data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('saturated: true while every unfinished block is decoding with spare symbols, false again when a decode fails', () => {
  const dir = tmp();
  try {
    // An executor that holds every job until the test answers it.
    const held: { job: DecodeJob; done: (r: DecodeResult, j: DecodeJob) => void }[] = [];
    const holding: DecodeExecutor = { decode: (gather, done) => held.push({ job: gather(), done }), close: () => Promise.resolve() };
    const r = new FountainReceiver({ out: join(dir, 'o.bin'), decoder: holding });
    const lose = rng(3);
    const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2);
    let i = 0;
    assert.equal(r.saturated, false, 'no object yet');
    while (!r.saturated && i < packets.length) r.push(packets[i++] as Uint8Array);
    assert.ok(r.saturated, 'saturated once every block waits for its decode');
    assert.equal(held.length, BLOCKS_OF_OBJ, 'every block is decoding');
    // One decode fails: that block needs another symbol, so the receiver wants traffic again.
    const first = held.shift() as (typeof held)[number];
    first.done(undefined, first.job);
    assert.equal(r.saturated, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('InlineDecoder: decodes run one per event-loop turn after decode() returns, in one reused job buffer', async () => {
  const dir = tmp();
  const inline = new InlineDecoder();
  try {
    const buffers = new Set<ArrayBufferLike>();
    let jobs = 0;
    let inside = 0;
    let pushing = false;
    let maxPending = 0;
    const decoder: DecodeExecutor = {
      decode(gather, done) {
        inline.decode(
          () => {
            const job = gather();
            if (job.count > 0) buffers.add(job.symbols.buffer);
            jobs++;
            return job;
          },
          (result, job) => {
            if (pushing) inside++;
            done(result, job);
          },
        );
        maxPending = Math.max(maxPending, inline.pending);
      },
      buffer: (bytes) => inline.buffer(bytes),
      close: () => inline.close(),
    };
    const out = join(dir, 'o.bin');
    const lose = rng(21);
    const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.25);
    await new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ out, decoder, onComplete: resolve, onError: reject });
      // All datagrams in one go, as one large socket batch: every block reaches K inside it.
      pushing = true;
      for (const p of packets) if (r.push(p) === 'complete') break;
      pushing = false;
      assert.ok(!r.isComplete, 'nothing decoded inside push');
    });
    assert.ok(jobs >= 2, `several blocks were decoded (${jobs})`);
    assert.ok(maxPending >= 2, `blocks queued for their turn (${maxPending})`);
    assert.equal(inside, 0, 'no decode ran inside push');
    assert.equal(buffers.size, 1, 'every job used the same buffer');
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    await inline.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('InlineDecoder: while receiving, decodes take at most half the time; after, they run back to back', async () => {
  const inline = new InlineDecoder();
  const job = { k: 1, symbolSize: 4, blockLength: 4, subBlocks: 1, alignment: 4, esis: new Int32Array(0), symbols: new Uint8Array(4), count: 0 };
  const spans: { start: number; end: number }[] = [];
  // Each "decode" (its gather) keeps the thread busy for 15 ms, as a block decode does.
  const busy = () => {
    const start = performance.now();
    while (performance.now() - start < 15);
    spans.push({ start, end: performance.now() });
    return job;
  };
  try {
    inline.setReceiving(true);
    let done = 0;
    let leftAt = Infinity;
    const all = new Promise<void>((resolve) => {
      for (let i = 0; i < 6; i++) {
        inline.decode(busy, () => {
          done++;
          // After the third decode the receiver leaves the group: the rest run back to back.
          if (done === 3) {
            leftAt = performance.now();
            inline.setReceiving(false);
          }
          if (done === 6) resolve();
        });
      }
    });
    await all;
    const gaps = spans.slice(1).map((s, i) => s.start - (spans[i] as { end: number }).end);
    const took = spans.map((s) => s.end - s.start);
    const whileReceiving = spans.slice(1).filter((s) => s.start < leftAt);
    assert.equal(whileReceiving.length, 2, 'the second and third decodes ran while receiving');
    for (let i = 0; i < whileReceiving.length; i++) assert.ok((gaps[i] as number) >= 0.9 * (took[i] as number), `gap ${gaps[i]} ms after a ${took[i]} ms decode`);
    assert.ok(Math.min(...gaps.slice(whileReceiving.length + 1)) < 5, `back to back after leaving: gaps ${gaps.map((g) => g.toFixed(1))}`);
  } finally {
    await inline.close();
  }
});

test('InlineDecoder: close() drops the decodes still queued', async () => {
  const inline = new InlineDecoder();
  let ran = 0;
  const job = { k: 1, symbolSize: 4, blockLength: 4, subBlocks: 1, alignment: 4, esis: new Int32Array(0), symbols: new Uint8Array(4), count: 0 };
  inline.decode(() => job, () => ran++);
  inline.decode(() => job, () => ran++);
  assert.equal(inline.pending, 2);
  await inline.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(ran, 0);
  assert.equal(inline.pending, 0);
});

test('with the worker-thread decoder, reception goes on during decodes and completion is signalled', async () => {
  const dir = tmp();
  const decoder = new WorkerDecoder(1);
  let receiver: FountainReceiver | undefined;
  try {
    const out = join(dir, 'o.bin');
    let completed = 0;
    const done = new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ out, decoder, onComplete: () => (completed++, resolve()), onError: reject });
      receiver = r;
      const lose = rng(31);
      const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2);
      let i = 0;
      // Feed in slices across event-loop turns, as a socket would, until the decodes complete.
      const feed = () => {
        if (r.isComplete) return;
        for (let n = 0; n < 200 && i < packets.length; n++, i++) if (r.push(packets[i] as Uint8Array) === 'complete') return resolve();
        if (i < packets.length) setImmediate(feed);
      };
      feed();
    });
    await done;
    assert.ok(completed <= 1);
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
    // Job buffers are recycled between blocks; the last block's short source symbol must still be
    // zero-padded, or its decode yields wrong bytes and only the whole-object hash catches it.
    assert.equal(receiver?.stats.hashMismatches, 0);
  } finally {
    await decoder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the whole-object hash, fed block by block, is right when blocks finish out of order (last block first)', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const packets = stream(newSender(OBJ), 3000);
    const sbnOf = (d: Uint8Array) => {
      const p = decodePacket(d);
      return p.kind === 'symbol' ? p.symbol.sbn : Infinity;
    };
    // Descriptions first, then every symbol of the last block, then the one before, and so on;
    // some source symbols lost, so later blocks need a real decode, not just the source run.
    const lose = rng(9);
    const descriptions = packets.filter((d) => sbnOf(d) === Infinity);
    const symbols = packets.filter((d) => sbnOf(d) !== Infinity && lose() >= 0.1).sort((a, b) => sbnOf(b) - sbnOf(a));
    const ordered = [...descriptions, ...symbols];
    const r = new FountainReceiver({ out });
    let firstDone = -1;
    let complete = false;
    for (const d of ordered) {
      complete = r.push(d) === 'complete';
      if (firstDone < 0 && r.progress().blocksDone === 1) firstDone = sbnOf(d);
      if (complete) break;
    }
    assert.ok(complete);
    assert.equal(firstDone, BLOCKS_OF_OBJ - 1, 'the last block finished first');
    assert.equal(r.stats.hashMismatches, 0);
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [how, decoder] of [
  ['in place', syncDecoder],
  // The job-buffer path (a worker's): the same executor without decodeInPlace.
  ['into a job buffer', { decode: syncDecoder.decode, close: syncDecoder.close } as DecodeExecutor],
] as const) {
  test(`a repair record that went bad in the spool is dropped when its block decodes (${how}), counted, and the block still completes`, () => {
    const dir = tmp();
    try {
      const T = 1024;
      const K = 400;
      const obj = makeObject(K * T - 100, T, K, 9);
      assert.equal(blockPartition(obj.oti).length, 1);
      const source = stream(newSender(obj), 2000).filter((p) => {
        const d = decodePacket(p);
        return d.kind !== 'symbol' || d.symbol.esi < 100;
      });
      const repair = stream(newSender(obj, { startRound: K }), 600).filter((p) => decodePacket(p).kind === 'symbol');
      const r = new FountainReceiver({ out: join(dir, 'o.bin'), decoder });
      for (const p of source) r.push(p);
      // 100 source and 299 repair symbols: one short of K. The spool writes its symbol records
      // 256 KiB at a time, so the first ~250 are on disk now.
      for (let i = 0; i < 299; i++) r.push(repair[i] as Uint8Array);
      const fd = openSync(join(r.spoolDir, 'symbols'), 'r+');
      try {
        const at = 16 + 7; // a byte of the first record's symbol
        const byte = new Uint8Array(1);
        assert.equal(readSync(fd, byte, 0, 1, at), 1);
        byte[0] = (byte[0] as number) ^ 0x5a;
        writeSync(fd, byte, 0, 1, at);
      } finally {
        closeSync(fd);
      }
      r.push(repair[299] as Uint8Array);
      assert.equal(r.stats.corruptRecords, 1, 'the bad record was caught when the decode read it');
      assert.ok(!r.isComplete, 'one symbol short again');
      for (let i = 300; !r.isComplete && i < repair.length; i++) r.push(repair[i] as Uint8Array);
      assert.ok(r.isComplete);
      assert.equal(r.stats.decodeFailures, 0, 'the bad symbol never reached the decoder');
      assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'o.bin'))), obj.data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('InlineDecoder.warmUp: synthetic decodes run behind real ones; real blocks still decode exactly after them; close() drops the rest', async () => {
  const dir = tmp();
  const inline = new InlineDecoder();
  try {
    const order: string[] = [];
    let warmAtFirstReal = -1;
    const decoder: DecodeExecutor = {
      decode: (gather, done) => inline.decode(gather, done),
      decodeInPlace(select, done) {
        inline.decodeInPlace(select, (result, job) => {
          if (warmAtFirstReal < 0) warmAtFirstReal = inline.warmUps;
          order.push('real');
          done(result, job);
        });
      },
      buffer: (bytes) => inline.buffer(bytes),
      close: () => inline.close(),
    };
    // Warm-ups first, at the object's own K and T (their arenas are then reused by real decodes).
    inline.warmUp(LAST_BLOCK_K, OBJ.oti.symbolSize, 3);
    await new Promise((r) => setImmediate(r));
    assert.equal(inline.warmUps, 1, 'one warm-up per event-loop turn');
    const out = join(dir, 'o.bin');
    const lose = rng(5);
    await new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ out, decoder, onComplete: resolve, onError: reject });
      for (const p of stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2)) if (r.push(p) === 'complete') break;
      assert.ok(r.lossSeen);
    });
    assert.equal(warmAtFirstReal, 1, 'the real decodes queued meanwhile went ahead of the two warm-ups left');
    assert.ok(order.length >= BLOCKS_OF_OBJ, 'every block decoded');
    assert.deepEqual(new Uint8Array(readFileSync(out)), OBJ.data);
    for (let waited = 0; inline.warmUps < 3 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    assert.equal(inline.warmUps, 3, 'the other warm-ups ran once no real decode waited');
    inline.warmUp(LAST_BLOCK_K, OBJ.oti.symbolSize, 2);
    await inline.close();
    await new Promise((r) => setImmediate(r));
    assert.equal(inline.warmUps, 3, 'close() dropped the queued warm-ups');
  } finally {
    await inline.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lossSeen: false for an object received whole from its source symbols; true after a lost source symbol or a kept repair symbol', () => {
  const dir = tmp();
  try {
    const whole = new FountainReceiver({ out: join(dir, 'a.bin') });
    assert.ok(feedUntilDone(whole, stream(newSender(OBJ), 6000)));
    assert.equal(whole.lossSeen, false, 'nothing lost, nothing to decode');
    const packets = stream(newSender(OBJ), 6000);
    const gap = new FountainReceiver({ out: join(dir, 'b.bin') });
    // The description, then the second round of source symbols without the first.
    gap.push(packets[0] as Uint8Array);
    assert.equal(gap.lossSeen, false);
    gap.push(packets[1 + BLOCKS_OF_OBJ + 1] as Uint8Array);
    assert.equal(gap.lossSeen, true, 'ESI 1 came without ESI 0');
    // A late joiner that hears only repair symbols.
    const late = new FountainReceiver({ out: join(dir, 'c.bin') });
    late.push(packets[0] as Uint8Array);
    const repair = stream(newSender(OBJ, { startRound: 200 }), 3);
    for (const p of repair) late.push(p);
    assert.equal(late.lossSeen, true);
    gap.close();
    late.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('objects with sub-blocks (N = 2, from another sender): decoded with loss, and resumed from the spool with BLOCK_DONE trusted', () => {
  const dir = tmp();
  try {
    const data = OBJ.data;
    const oti = otiFor(data.length, 256, { maxBlockSymbols: 100, subBlocks: 2, alignment: 4 });
    assert.equal(oti.subBlocks, 2);
    const obj = { data, oti, hash: hashBytes(HashAlgorithm.SHA256, data) };
    const packets = stream(newSender(obj), 6000);
    const out = join(dir, 'o.bin');
    const lose = rng(12);
    const kept = packets.filter(() => lose() >= 0.15);
    // Stop the first receiver once some blocks are done, as a crash would.
    const r1 = new FountainReceiver({ out });
    let i = 0;
    while (i < kept.length && r1.progress().blocksDone < 2) r1.push(kept[i++] as Uint8Array);
    const done1 = r1.progress().blocksDone;
    assert.ok(done1 >= 2 && !r1.isComplete);
    r1.close();
    const r2 = new FountainReceiver({ out });
    assert.equal(r2.stats.resumedBlocks, done1, 'every finished block was trusted again');
    assert.equal(r2.stats.corruptRecords, 0);
    assert.ok(feedUntilDone(r2, kept.slice(i)));
    assert.equal(r2.stats.hashMismatches, 0);
    assert.deepEqual(new Uint8Array(readFileSync(out)), data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
