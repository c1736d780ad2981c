import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, openSync, writeSync, readSync, closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeObject, newSender, rng } from './sim.js';
import { FileStore, FountainReceiver, MemoryStore, type ReceiverOptions } from '../../src/transfer/receiver/index.js';
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

/** Feeds datagrams one millisecond apart (the receiver's clock is the caller's) until the object completes. */
function feedUntilDone(r: FountainReceiver, packets: Iterable<Uint8Array>): boolean {
  let now = 0;
  for (const p of packets) if (r.push(p, now++) === 'complete') return true;
  return false;
}

/** A receiver that assembles the object in memory: receiver logic without a file system. */
function inMemory(opts: Partial<Omit<ReceiverOptions, 'store'>> = {}, store = new MemoryStore()): { r: FountainReceiver; store: MemoryStore } {
  return { r: new FountainReceiver({ store, ...opts }), store };
}

/** A receiver that assembles the object through the spool next to `out`. */
function onDisk(out: string, opts: Partial<Omit<ReceiverOptions, 'store'>> = {}): { r: FountainReceiver; store: FileStore } {
  const store = new FileStore({ out });
  return { r: new FountainReceiver({ store, ...opts }), store };
}

/** The object a memory store delivered: non-empty, and equal to `data`. */
function assertDelivered(store: MemoryStore, data: Uint8Array): void {
  const got = store.result;
  assert.ok(got && got.length > 0, 'an object was delivered');
  assert.deepEqual(got, data);
}

test('resume after a crash does not redo finished blocks', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'o.bin');
    const sender = newSender(OBJ);
    const packets = stream(sender, 4000);
    const { r: r1 } = onDisk(out);
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
    const { r: r2 } = onDisk(out);
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
    const { r: r1, store: s1 } = onDisk(out);
    let i = 0;
    for (; i < kept.length && r1.progress().blocksDone < 1; i++) r1.push(kept[i] as Uint8Array);
    const before = r1.progress();
    assert.ok(before.blocksDone >= 1 && before.blocksDone < before.blocks, JSON.stringify(before));
    r1.crash();
    // The journal says block 0 is done, but its bytes are gone: zero the whole block in data.part.
    const [first] = blockPartition(OBJ.oti);
    const dfd = openSync(join(s1.dir, 'data.part'), 'r+');
    writeSync(dfd, new Uint8Array(first?.length ?? 0), 0, first?.length ?? 0, 0);
    closeSync(dfd);
    const { r: r2 } = onDisk(out);
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
    const { r: r1, store: s1 } = onDisk(out);
    // Half the needed symbols, with repair symbols in the spool because of the loss.
    let n = 0;
    for (; n < kept.length && (!r1.info || r1.progress().have < r1.progress().needed * 0.6); n++) r1.push(kept[n] as Uint8Array);
    assert.equal(r1.progress().blocksDone, 0);
    r1.close();
    const spool = s1.dir;
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
    const { r: r2 } = onDisk(out);
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
    const { r: r1, store: s1 } = onDisk(out);
    for (let i = 0; i < 300; i++) r1.push(packets[i] as Uint8Array, i);
    r1.close();
    const symbols = join(s1.dir, 'symbols');
    writeFileSync(symbols, new Uint8Array(100), { flag: 'a' });
    const { r: r2 } = onDisk(out);
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

test('unwritable target: the file store raises a clear StorageError before anything is received', () => {
  const dir = tmp();
  try {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    assert.throws(() => new FileStore({ out: join(file, 'sub', 'o.bin') }), (e: unknown) => e instanceof StorageError && e.code === 'ERR_STORAGE_PERMISSION');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
    const { r: r1 } = onDisk(out);
    let i = 0;
    while (i < kept.length && r1.progress().blocksDone < 2) r1.push(kept[i++] as Uint8Array, i);
    const done1 = r1.progress().blocksDone;
    assert.ok(done1 >= 2 && !r1.isComplete);
    r1.close();
    const { r: r2 } = onDisk(out);
    assert.equal(r2.stats.resumedBlocks, done1, 'every finished block was trusted again');
    assert.equal(r2.stats.corruptRecords, 0);
    assert.ok(feedUntilDone(r2, kept.slice(i)));
    assert.equal(r2.stats.hashMismatches, 0);
    assert.deepEqual(new Uint8Array(readFileSync(out)), data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [how, decoder] of [
  ['in place', syncDecoder],
  // The job-buffer path (a worker's): the same executor without in-place decoding.
  ['into a job buffer', { request: syncDecoder.request, decode: syncDecoder.decode, close: syncDecoder.close } as DecodeExecutor],
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
      const { r, store } = onDisk(join(dir, 'o.bin'), { decoder });
      for (const p of source) r.push(p);
      // 100 source and 299 repair symbols: one short of K. The spool writes its symbol records
      // 256 KiB at a time, so the first ~250 are on disk now.
      for (let i = 0; i < 299; i++) r.push(repair[i] as Uint8Array);
      const fd = openSync(join(store.dir, 'symbols'), 'r+');
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

// Receiver logic, in memory (MemoryStore): no temp dir.

test('loss, reordering and duplicates: the object is intact, duplicates counted and not kept', () => {
  const { r, store } = inMemory();
  const rand = rng(41);
  const packets = stream(newSender(OBJ), 6000).filter(() => rand() >= 0.2);
  // Each datagram once or twice, in windows of 50 shuffled (a reordering network).
  const net: Uint8Array[] = [];
  for (const p of packets) {
    net.push(p);
    if (rand() < 0.15) net.push(p);
  }
  for (let at = 0; at < net.length; at += 50) {
    const w = net.slice(at, at + 50);
    for (let i = w.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [w[i], w[j]] = [w[j] as Uint8Array, w[i] as Uint8Array];
    }
    net.splice(at, w.length, ...w);
  }
  let completedAt = -1;
  for (let i = 0; i < net.length && completedAt < 0; i++) if (r.push(net[i] as Uint8Array, 1000 + i) === 'complete') completedAt = 1000 + i;
  assert.ok(completedAt >= 0);
  assertDelivered(store, OBJ.data);
  assert.ok(r.stats.duplicate > 50, `duplicates ${r.stats.duplicate}`);
  assert.ok(r.stats.decodeAttempts > r.stats.decodeFailures, 'blocks were decoded');
  assert.equal(r.stats.hashMismatches, 0);
  const p = r.progress();
  assert.ok(p.complete && p.blocksDone === BLOCKS_OF_OBJ);
  assert.equal(p.selectedAt, 1000 + net.findIndex((d) => decodePacket(d).kind === 'description'), 'selected at the first description, by the caller clock');
  assert.equal(p.completedAt, completedAt, 'completed at the datagram that completed it');
});

test('a late joiner (symbols before any description, then the loop from mid-pass) completes from repair symbols', () => {
  const { r, store } = inMemory();
  const packets = stream(newSender(OBJ), 8000);
  // Join after the first half of the source round: the first datagrams heard are symbols.
  const heard = packets.slice(300);
  assert.equal(decodePacket(heard[0] as Uint8Array).kind, 'symbol');
  let now = 0;
  let done = false;
  for (const p of heard) if ((done = r.push(p, (now += 1)) === 'complete')) break;
  assert.ok(done);
  assert.ok(r.stats.early > 0, 'symbols before the description were buffered');
  assert.ok(r.lossSeen, 'the missed source symbols came as repair symbols');
  assertDelivered(store, OBJ.data);
});

test('fuzzed datagrams never crash the receiver and never produce a wrong object', () => {
  const { r, store } = inMemory();
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
    if (r.push(bad, i) === 'complete') done = true;
    if (!done && r.push(p, i) === 'complete') done = true;
  }
  assert.ok(done);
  assert.ok(r.stats.malformed + r.stats.foreign > fuzzed / 3, JSON.stringify(r.stats));
  assertDelivered(store, OBJ.data);
});

test('poisoned symbols (valid headers, wrong data) end in a hash mismatch and a restart, never a wrong object', () => {
  const { r, store } = inMemory();
  const packets = stream(newSender(OBJ), 8000);
  let done = false;
  let mismatchSeenWhileIncomplete = false;
  for (let i = 0; i < packets.length && !done; i++) {
    let p = packets[i] as Uint8Array;
    const q = decodePacket(p);
    // Early symbols with flipped data (what an injector without keys can do).
    if (i < 1000 && q.kind === 'symbol' && i % 7 === 0) {
      p = new Uint8Array(p);
      p[p.length - 1]! ^= 0xff;
    }
    done = r.push(p, i) === 'complete';
    if (!done && r.stats.hashMismatches > 0 && store.result === undefined) mismatchSeenWhileIncomplete = true;
  }
  assert.ok(done);
  assert.ok(r.stats.hashMismatches >= 1, 'the poisoned decode was caught');
  assert.ok(mismatchSeenWhileIncomplete, 'nothing was delivered on the mismatch');
  assertDelivered(store, OBJ.data);
});

test('conflicting descriptions and packets of other objects are counted and ignored', () => {
  const { r, store } = inMemory();
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
  r.push(a[0] as Uint8Array, 0);
  r.push(conflicting, 1);
  for (const p of b) r.push(p, 2);
  assert.ok(feedUntilDone(r, a.slice(1)));
  assert.equal(r.stats.conflicts, 1);
  assert.equal(r.stats.foreign, b.length);
  assertDelivered(store, OBJ.data);
});

test('two objects on the channel: name / object id select one; without a selection the first described wins', () => {
  const other = makeObject(50_000, 256, 100, 3);
  const sa = newSender(OBJ, { name: 'a.bin' });
  const sb = newSender(other, { name: 'b.bin' });
  const a = stream(sa, 3000);
  const b = stream(sb, 3000);
  const mixed: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) mixed.push(b[i] as Uint8Array, a[i] as Uint8Array);
  const byName = inMemory({ name: 'a.bin' });
  assert.ok(feedUntilDone(byName.r, mixed));
  assertDelivered(byName.store, OBJ.data);
  assert.ok(byName.r.stats.foreign > 0);
  const byId = inMemory({ objectId: sb.objectId });
  assert.ok(feedUntilDone(byId.r, mixed));
  assertDelivered(byId.store, other.data);
  const first = inMemory();
  assert.ok(feedUntilDone(first.r, mixed));
  assertDelivered(first.store, other.data);
});

test('a description whose object id does not match its contents is malformed', () => {
  const { r, store } = inMemory();
  const desc = new Uint8Array(stream(newSender(OBJ), 1)[0] as Uint8Array);
  desc[8]! ^= 1;
  r.push(desc, 0);
  assert.equal(r.stats.malformed, 1);
  assert.equal(r.info, undefined);
  assert.equal(store.saved(), undefined, 'nothing was stored');
});

test('an object larger than the memory store: a StorageError from push, and every later push throws it', () => {
  const { r } = inMemory({}, new MemoryStore({ maxBytes: 1000 }));
  const packets = stream(newSender(OBJ), 10);
  assert.throws(() => r.push(packets[0] as Uint8Array, 0), (e: unknown) => e instanceof StorageError && e.code === 'ERR_STORAGE_FULL');
  assert.throws(() => r.push(packets[1] as Uint8Array, 1), (e: unknown) => e instanceof StorageError && e.code === 'ERR_STORAGE_FULL');
});

test('resume from a memory store: a new receiver on the same store keeps finished blocks and held symbols', () => {
  const store = new MemoryStore();
  const { r: r1 } = inMemory({}, store);
  const packets = stream(newSender(OBJ), 4000);
  const lose = rng(4);
  const kept = packets.filter(() => lose() >= 0.3);
  let i = 0;
  while (i < kept.length && r1.progress().blocksDone < 1) r1.push(kept[i++] as Uint8Array, i);
  const before = r1.progress();
  assert.ok(before.blocksDone >= 1 && before.blocksDone < before.blocks, JSON.stringify(before));
  r1.crash();
  const { r: r2 } = inMemory({}, store);
  assert.equal(r2.stats.resumedBlocks, before.blocksDone);
  assert.equal(r2.progress().have, before.have, 'every symbol held before is held again');
  assert.ok(feedUntilDone(r2, kept.slice(i)));
  assertDelivered(store, OBJ.data);
  assert.equal(r2.stats.decodeAttempts - r2.stats.decodeFailures, before.blocks - before.blocksDone, 'finished blocks not decoded again');
  // A receiver selecting another object discards what the store holds.
  const other = new MemoryStore();
  const { r: r3 } = inMemory({}, other);
  r3.push(packets[0] as Uint8Array, 0);
  assert.ok(r3.info, 'the description was adopted');
  assert.ok(other.saved());
  const { r: r4 } = inMemory({ name: 'not-this.bin' }, other);
  assert.equal(r4.info, undefined);
  assert.equal(other.saved(), undefined, 'a saved object that does not match the selection is discarded');
});

test('checkBlock (per-block commitment) rejects a poisoned block before it is written; the block is collected again', () => {
  const blocks = blockPartition(OBJ.oti);
  const digests = blocks.map((b) => Buffer.from(hashBytes(1, OBJ.data.subarray(b.offset, b.offset + b.length))).toString('hex'));
  let checks = 0;
  const { r, store } = inMemory({
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
    done = r.push(p, i) === 'complete';
  }
  assert.ok(done);
  assert.ok(r.stats.blocksRejected >= 1, JSON.stringify(r.stats));
  assert.equal(r.stats.hashMismatches, 0, 'caught per block, before the whole-object hash');
  assert.ok(checks >= blocks.length);
  assertDelivered(store, OBJ.data);
});

for (const [how, decoder] of [
  // Like WorkerDecoder's recycled job buffers, but always dirty (no in-place decoding: this path).
  [
    'job buffers always dirty',
    { request: syncDecoder.request, decode: syncDecoder.decode, close: syncDecoder.close, buffer: (bytes: number) => new Uint8Array(bytes).fill(0xa5) } as DecodeExecutor,
  ],
  // In place: each block's arena is the pooled memory of the block decoded before it.
  ['in-place arenas reused from the previous block', syncDecoder],
] as const) {
  test(`reused memory (${how}) may hold old bytes: the short last source symbol is still zero-padded`, () => {
    assert.ok(OBJ.data.length % OBJ.oti.symbolSize !== 0, 'the object ends with a short symbol');
    const { r, store } = inMemory({ decoder });
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
    assertDelivered(store, OBJ.data);
  });
}

test('saturated: true while every unfinished block is decoding with spare symbols, false again when a decode fails', () => {
  // An executor that grants every turn at once and holds every job until the test answers it.
  const held: { job: DecodeJob; done: (r: DecodeResult, j: DecodeJob) => void }[] = [];
  const holding: DecodeExecutor = { request: (turn) => turn(), decode: (job, done) => held.push({ job, done }), close: () => Promise.resolve() };
  const { r } = inMemory({ decoder: holding });
  const lose = rng(3);
  const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2);
  let i = 0;
  assert.equal(r.saturated, false, 'no object yet');
  while (!r.saturated && i < packets.length) r.push(packets[i++] as Uint8Array, i);
  assert.ok(r.saturated, 'saturated once every block waits for its decode');
  assert.equal(held.length, BLOCKS_OF_OBJ, 'every block is decoding');
  assert.ok(held.every((h) => h.job.count > 0 && h.job.symbols.length === h.job.count * OBJ.oti.symbolSize), 'each job carries its symbols');
  // One decode fails: that block needs another symbol, so the receiver wants traffic again.
  const first = held.shift() as (typeof held)[number];
  first.done(undefined, first.job);
  assert.equal(r.saturated, false);
});

test('data flows one way: the executor gets jobs that carry their symbols; a result that comes after close() is ignored', () => {
  // Jobs are held, then answered after the receiver was closed: nothing may be written.
  const held: { job: DecodeJob; done: (r: DecodeResult, j: DecodeJob) => void }[] = [];
  const holding: DecodeExecutor = { request: (turn) => turn(), decode: (job, done) => held.push({ job, done }), close: () => Promise.resolve() };
  const { r, store } = inMemory({ decoder: holding });
  const lose = rng(6);
  for (const [i, p] of stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2).entries()) if (r.push(p, i) === 'complete' || held.length > 0) break;
  assert.equal(held.length, 1);
  const h = held[0] as (typeof held)[number];
  let result: DecodeResult;
  // The job alone determines the block: no call back into the receiver or its store.
  syncDecoder.decode(h.job, (res) => (result = res && new Uint8Array(res)));
  assert.ok(result && result.length > 0, 'the job decoded on its own');
  const blocksDone = r.progress().blocksDone;
  r.close();
  h.done(result, h.job);
  assert.equal(r.progress().blocksDone, blocksDone, 'a result after close() is not written');
  assert.equal(store.result, undefined);
});

test('InlineDecoder: turns come one per event-loop turn after push returns; jobs share one reused buffer', async () => {
  const inline = new InlineDecoder();
  try {
    const buffers = new Set<ArrayBufferLike>();
    let jobs = 0;
    let inside = 0;
    let pushing = false;
    let maxPending = 0;
    const decoder: DecodeExecutor = {
      request(turn) {
        inline.request(() => {
          if (pushing) inside++;
          turn();
        });
        maxPending = Math.max(maxPending, inline.pending);
      },
      decode(job, done) {
        buffers.add(job.symbols.buffer);
        jobs++;
        inline.decode(job, done);
      },
      buffer: (bytes) => inline.buffer(bytes),
      close: () => inline.close(),
    };
    const lose = rng(21);
    const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.25);
    const store = new MemoryStore();
    await new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ store, decoder, onComplete: resolve, onError: reject });
      // All datagrams in one go, as one large socket batch: every block reaches K inside it.
      pushing = true;
      for (const [i, p] of packets.entries()) if (r.push(p, i) === 'complete') break;
      pushing = false;
      assert.ok(!r.isComplete, 'nothing decoded inside push');
    });
    assert.ok(jobs >= 2, `several blocks were decoded (${jobs})`);
    assert.ok(maxPending >= 2, `blocks waited for their turn (${maxPending})`);
    assert.equal(inside, 0, 'no turn ran inside push');
    assert.equal(buffers.size, 1, 'every job used the same buffer');
    assertDelivered(store, OBJ.data);
  } finally {
    await inline.close();
  }
});

test('InlineDecoder: while receiving, turns take at most half the time; after, they run back to back', async () => {
  const inline = new InlineDecoder();
  const spans: { start: number; end: number }[] = [];
  // Each turn keeps the thread busy for 15 ms, as a block decode does.
  const busy = () => {
    const start = performance.now();
    while (performance.now() - start < 15);
    spans.push({ start, end: performance.now() });
  };
  try {
    inline.setReceiving(true);
    let done = 0;
    let leftAt = Infinity;
    const all = new Promise<void>((resolve) => {
      for (let i = 0; i < 6; i++) {
        inline.request(() => {
          busy();
          done++;
          // After the third turn the receiver leaves the group: the rest run back to back.
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
    assert.equal(whileReceiving.length, 2, 'the second and third turns ran while receiving');
    for (let i = 0; i < whileReceiving.length; i++) assert.ok((gaps[i] as number) >= 0.9 * (took[i] as number), `gap ${gaps[i]} ms after a ${took[i]} ms turn`);
    // Under the half-time rule a gap is at least the turn before it (15 ms); back to back it is
    // the event loop's turn-around. Half a turn tells the two apart with room for a loaded machine.
    assert.ok(Math.min(...gaps.slice(whileReceiving.length + 1)) < 0.5 * Math.min(...took), `back to back after leaving: gaps ${gaps.map((g) => g.toFixed(1))}`);
  } finally {
    await inline.close();
  }
});

test('InlineDecoder: close() drops the turns still queued', async () => {
  const inline = new InlineDecoder();
  let ran = 0;
  inline.request(() => ran++);
  inline.request(() => ran++);
  assert.equal(inline.pending, 2);
  await inline.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(ran, 0);
  assert.equal(inline.pending, 0);
});

test('with the worker-thread decoder, reception goes on during decodes and completion is signalled', async () => {
  const decoder = new WorkerDecoder(1);
  let receiver: FountainReceiver | undefined;
  const store = new MemoryStore();
  try {
    let completed = 0;
    const done = new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ store, decoder, onComplete: () => (completed++, resolve()), onError: reject });
      receiver = r;
      const lose = rng(31);
      const packets = stream(newSender(OBJ), 6000).filter(() => lose() >= 0.2);
      let i = 0;
      // Feed in slices across event-loop turns, as a socket would, until the decodes complete.
      const feed = () => {
        if (r.isComplete) return;
        for (let n = 0; n < 200 && i < packets.length; n++, i++) if (r.push(packets[i] as Uint8Array, i) === 'complete') return resolve();
        if (i < packets.length) setImmediate(feed);
      };
      feed();
    });
    await done;
    assert.ok(completed <= 1);
    assertDelivered(store, OBJ.data);
    // Job buffers are recycled between blocks; the last block's short source symbol must still be
    // zero-padded, or its decode yields wrong bytes and only the whole-object hash catches it.
    assert.equal(receiver?.stats.hashMismatches, 0);
    assert.ok((receiver?.stats.decodeAttempts ?? 0) > 0);
  } finally {
    await decoder.close();
  }
});

test('the whole-object hash, fed block by block, is right when blocks finish out of order (last block first)', () => {
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
  const { r, store } = inMemory();
  let firstDone = -1;
  let complete = false;
  for (const [i, d] of ordered.entries()) {
    complete = r.push(d, i) === 'complete';
    if (firstDone < 0 && r.progress().blocksDone === 1) firstDone = sbnOf(d);
    if (complete) break;
  }
  assert.ok(complete);
  assert.equal(firstDone, BLOCKS_OF_OBJ - 1, 'the last block finished first');
  assert.equal(r.stats.hashMismatches, 0);
  assertDelivered(store, OBJ.data);
});

test('InlineDecoder.warmUp: synthetic decodes run behind real ones; real blocks still decode exactly after them; close() drops the rest', async () => {
  const inline = new InlineDecoder();
  try {
    const order: string[] = [];
    let warmAtFirstReal = -1;
    const decoder: DecodeExecutor = {
      request(turn) {
        inline.request(() => {
          if (warmAtFirstReal < 0) warmAtFirstReal = inline.warmUps;
          order.push('real');
          turn();
        });
      },
      decode: (job, done) => inline.decode(job, done),
      inPlace: true,
      buffer: (bytes) => inline.buffer(bytes),
      close: () => inline.close(),
    };
    // Warm-ups first, at the object's own K and T (their arenas are then reused by real decodes).
    inline.warmUp(LAST_BLOCK_K, OBJ.oti.symbolSize, 3);
    await new Promise((r) => setImmediate(r));
    assert.equal(inline.warmUps, 1, 'one warm-up per event-loop turn');
    const lose = rng(5);
    const store = new MemoryStore();
    await new Promise<void>((resolve, reject) => {
      const r = new FountainReceiver({ store, decoder, onComplete: resolve, onError: reject });
      for (const [i, p] of stream(newSender(OBJ), 6000)
        .filter(() => lose() >= 0.2)
        .entries())
        if (r.push(p, i) === 'complete') break;
      assert.ok(r.lossSeen);
    });
    assert.equal(warmAtFirstReal, 1, 'the real decodes queued meanwhile went ahead of the two warm-ups left');
    assert.ok(order.length >= BLOCKS_OF_OBJ, 'every block decoded');
    assertDelivered(store, OBJ.data);
    for (let waited = 0; inline.warmUps < 3 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    assert.equal(inline.warmUps, 3, 'the other warm-ups ran once no real decode waited');
    inline.warmUp(LAST_BLOCK_K, OBJ.oti.symbolSize, 2);
    await inline.close();
    await new Promise((r) => setImmediate(r));
    assert.equal(inline.warmUps, 3, 'close() dropped the queued warm-ups');
  } finally {
    await inline.close();
  }
});

test('lossSeen: false for an object received whole from its source symbols; true after a lost source symbol or a kept repair symbol', () => {
  const whole = inMemory();
  assert.ok(feedUntilDone(whole.r, stream(newSender(OBJ), 6000)));
  assertDelivered(whole.store, OBJ.data);
  assert.equal(whole.r.lossSeen, false, 'nothing lost, nothing to decode');
  assert.equal(whole.store.keptSymbols, 0, 'no symbol kept outside its place');
  const packets = stream(newSender(OBJ), 6000);
  const { r: gap } = inMemory();
  // The description, then the second round of source symbols without the first.
  gap.push(packets[0] as Uint8Array, 0);
  assert.equal(gap.lossSeen, false);
  gap.push(packets[1 + BLOCKS_OF_OBJ + 1] as Uint8Array, 1);
  assert.equal(gap.lossSeen, true, 'ESI 1 came without ESI 0');
  // A late joiner that hears only repair symbols.
  const late = inMemory();
  late.r.push(packets[0] as Uint8Array, 0);
  const repair = stream(newSender(OBJ, { startRound: 200 }), 3);
  for (const p of repair) late.r.push(p, 1);
  assert.equal(late.r.lossSeen, true);
  assert.ok(late.store.keptSymbols > 0);
});

test('sender refuses inconsistent options', () => {
  assert.throws(() => new FountainSender({ oti: OBJ.oti, source: new BytesSource(OBJ.data.subarray(1)), hash: OBJ.hash }));
  assert.throws(() => newSender(OBJ, { senderIndex: 2, senders: 2 }));
  assert.throws(() => newSender(OBJ, { rateBps: 0 }));
});
