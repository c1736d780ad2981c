// Interop with Debian's liblcrq 0.0.1 (an independent C implementation of RFC 6330): a small C
// program (lcrq-tool.c) is compiled into a temporary directory. Symbols must be byte-identical
// for the same ESI, and each side decodes what the other encoded. liblcrq crashes near K = 10000,
// so K stays <= 1000 here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockDecoder, BlockEncoder, blockParams, otiFor } from '../../src/fec/index.js';
import { REPO_ROOT, prng, randomBytes } from './helpers.js';

const HEADER = '/usr/include/lcrq.h';
let dir = '';
let tool = '';

before(() => {
  if (!existsSync(HEADER)) return;
  dir = mkdtempSync(join(tmpdir(), 'iotupd-lcrq-'));
  tool = join(dir, 'lcrq-tool');
  execFileSync('gcc', ['-O2', '-o', tool, join(REPO_ROOT, 'test/fec/lcrq-tool.c'), '-llcrq'], { stdio: 'pipe' });
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function lcrq(args: string[], input?: Uint8Array): { status: number; out: Buffer; err: string } {
  if (input) writeFileSync(join(dir, 'in.bin'), input);
  const r = spawnSync(tool, args, { maxBuffer: 1 << 28, timeout: 60_000 });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr.toString() };
}

const CASES = [
  { k: 10, t: 64 },
  { k: 100, t: 1280 }, // K' = 101: repair ESIs are shifted by one against ISIs
  { k: 101, t: 256 },
  { k: 1000, t: 512 },
];

for (const { k, t } of CASES) {
  test(`liblcrq K=${k} T=${t}: identical symbols, and each decodes the other's repair symbols`, (ctx) => {
    if (!tool) return ctx.skip(`${HEADER} not installed`);
    const rnd = prng(k * 7919 + t);
    const f = k * t - 7; // the last symbol is padded
    const data = randomBytes(f, rnd);
    const oti = otiFor(f, t, { alignment: 4 });
    assert.equal(oti.sourceBlocks, 1);
    const enc = new BlockEncoder(data, k, t, 1, 4);
    const kp = blockParams(k).kPrime;

    // 1. Same ESI, same bytes: source, first repair, far repair.
    const esis = [0, k - 1, k, k + 1, k + 2, k + 1000, k + 70000];
    const theirs = lcrq(['enc', String(f), String(t), join(dir, 'in.bin'), ...esis.map(String)], data);
    assert.equal(theirs.status, 0, theirs.err);
    assert.match(theirs.err, new RegExp(`K=${k} KP=${kp} Al=4`));
    esis.forEach((esi, i) => {
      assert.deepEqual(new Uint8Array(theirs.out.subarray(i * t, (i + 1) * t)), enc.symbol(esi), `ESI ${esi}`);
    });

    // 2. liblcrq repair symbols (K + 2 of them, random ESIs, shuffled) -> our decoder.
    const rep = new Set<number>();
    while (rep.size < k + 2) rep.add(k + Math.floor(rnd() * 4 * k));
    const repList = [...rep];
    const theirRep = lcrq(['enc', String(f), String(t), join(dir, 'in.bin'), ...repList.map(String)], data);
    assert.equal(theirRep.status, 0, theirRep.err);
    const dec = new BlockDecoder(k, t, f, 1, 4);
    let done = false;
    repList.forEach((esi, i) => {
      done = dec.add(esi, new Uint8Array(theirRep.out.subarray(i * t, (i + 1) * t)));
    });
    assert.ok(done, 'our decoder finished on liblcrq symbols');
    assert.deepEqual(dec.result(), data);

    // 3. Our symbols (repair-only, and mixed with a few source symbols) -> liblcrq's decoder.
    for (const mixed of [false, true]) {
      const chosen = new Set<number>();
      if (mixed) while (chosen.size < Math.floor(k / 3)) chosen.add(Math.floor(rnd() * k));
      while (chosen.size < k + 2) chosen.add(k + Math.floor(rnd() * 4 * k));
      const list = [...chosen];
      const buf = new Uint8Array(list.length * t);
      list.forEach((esi, i) => buf.set(enc.symbol(esi), i * t));
      const r = lcrq(['dec', String(f), String(t), join(dir, 'in.bin'), ...list.map(String)], buf);
      assert.equal(r.status, 0, `liblcrq decode (mixed=${mixed}): ${r.err}`);
      assert.deepEqual(new Uint8Array(r.out), data);
    }
  });
}
