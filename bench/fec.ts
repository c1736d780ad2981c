// npm run bench:fec — RaptorQ throughput, T = 1280, K in {100, 1000, 10000, 50000}, against the
// npm `raptorq` 1.7.24 (WASM) and Debian's liblcrq 0.0.1 (C, compiled here), in the same run.
//   encode = build the block encoder (intermediate symbols) + produce K repair symbols
//            cold: first block of that K (plan cache empty), warm: plan cached
//   decode = K repair symbols only (zero overhead) -> source block; if a set fails at exactly K,
//            the next seed is used and the retry is reported
// Mbit/s counts source bytes K*T*8. Figures are medians of wall time; the machine is shared, so
// they are noisy. The CPU-time column (best run, process user + system time, which includes V8's
// GC and compiler threads) shows our codec with less of other processes' load in it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockDecoder, BlockEncoder, clearPlanCache, kernel, setKernel } from '../src/fec/index.js';
import type { KernelKind } from '../src/fec/index.js';
import { loadNpmRaptorq } from '../test/fec/npm-raptorq.js';
import { REPO_ROOT } from '../test/fec/helpers.js';

const T = 1280;
const KS = (process.env['FEC_BENCH_K'] ?? '100,1000,10000,50000').split(',').map(Number);

function data(k: number): Uint8Array {
  const out = new Uint8Array(k * T);
  for (let i = 0; i < out.length; i++) out[i] = Math.imul(i, 2654435761) >>> 24;
  return out;
}

function mbps(k: number, ms: number): number {
  return (k * T * 8) / (ms * 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function reps(k: number): number {
  return k <= 100 ? 40 : k <= 1000 ? 20 : k <= 10000 ? 4 : 2;
}

/** Brings V8's optimising compiler (and wasm tier-up) to steady state before anything is timed. */
function warmUp(rq: Awaited<ReturnType<typeof loadNpmRaptorq>>): void {
  for (const k of [100, 1000]) {
    const src = data(k);
    for (let r = 0; r < (k === 100 ? 60 : 25); r++) {
      const enc = new BlockEncoder(src, k, T);
      const dec = new BlockDecoder(k, T, src.length);
      for (let i = 0; i < k + 5 && !dec.done; i++) dec.add(k + r * k + i, enc.symbol(k + r * k + i));
      enc.close();
      if (rq && r < 5) {
        const e = rq.Encoder.with_defaults(src, T);
        const packets = e.encode(k);
        e.free();
        const d = rq.Decoder.with_defaults(BigInt(src.length), T);
        for (const p of packets.slice(k)) if (d.decode(p) !== undefined) break;
        d.free();
      }
    }
  }
}

interface Row {
  k: number;
  cold: number;
  warm: number;
  dec: number;
  /** Best process CPU time (user + system) per warm encode / decode: less exposed to other load. */
  warmCpu: number;
  decCpu: number;
  note: string;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function benchOurs(k: number): Row {
  const src = data(k);
  clearPlanCache();
  let t0 = performance.now();
  let enc = new BlockEncoder(src, k, T);
  for (let i = 0; i < k; i++) enc.symbol(k + i);
  const cold = performance.now() - t0;
  const warm: number[] = [];
  const warmCpu: number[] = [];
  for (let r = 0; r < reps(k) + 1; r++) {
    enc.close(); // hands the block's memory to the next block, as a sender does block by block
    const c0 = process.cpuUsage();
    t0 = performance.now();
    enc = new BlockEncoder(src, k, T);
    for (let i = 0; i < k; i++) enc.symbol(k + i);
    if (r > 0) {
      warm.push(performance.now() - t0); // the first warm run also warms the JIT
      warmCpu.push(cpuMs(c0));
    }
  }
  const dec: number[] = [];
  const decCpu: number[] = [];
  let retries = 0;
  for (let r = -1, seed = 0; r < reps(k); seed++) {
    const first = k + seed * k;
    const syms: Uint8Array[] = [];
    for (let i = 0; i < k; i++) syms.push(enc.symbol(first + i));
    const c0 = process.cpuUsage();
    t0 = performance.now();
    const d = new BlockDecoder(k, T, src.length);
    let ok = false;
    for (let i = 0; i < k; i++) ok = d.add(first + i, syms[i]!);
    const ms = performance.now() - t0;
    const cms = cpuMs(c0);
    if (!ok) {
      retries++;
      continue;
    }
    if (d.result()![k * T - 1] !== src[k * T - 1]) throw new Error('bench decode mismatch');
    if (r >= 0) {
      dec.push(ms); // r = -1: warm-up
      decCpu.push(cms);
    }
    r++;
  }
  const best = (xs: number[]): number => Math.min(...xs);
  return { k, cold: mbps(k, cold), warm: mbps(k, median(warm)), dec: mbps(k, median(dec)), warmCpu: mbps(k, best(warmCpu)), decCpu: mbps(k, best(decCpu)), note: retries ? `${retries} seed(s) failed at exactly K` : '' };
}

function benchNpm(rq: Awaited<ReturnType<typeof loadNpmRaptorq>>, k: number): { enc: number; dec: number } | undefined {
  if (!rq) return undefined;
  const src = data(k);
  const encT: number[] = [];
  let packets: Uint8Array[] = [];
  for (let r = 0; r < (k >= 50000 ? 1 : Math.max(2, reps(k) / 2 + 1)); r++) {
    const t0 = performance.now();
    const e = rq.Encoder.with_defaults(src, T);
    packets = e.encode(k);
    if (r > 0 || k >= 50000) encT.push(performance.now() - t0);
    e.free();
  }
  // Its own repair packets only (its numbering is self-consistent); every block's share.
  const blocks = new Set(packets.map((q) => q[0])).size;
  const repair = packets.filter((p) => ((p[1]! << 16) | (p[2]! << 8) | p[3]!) >= k / blocks);
  const decT: number[] = [];
  for (let r = 0; r < (k >= 50000 ? 1 : Math.max(2, reps(k) / 2 + 1)); r++) {
    const t0 = performance.now();
    const d = rq.Decoder.with_defaults(BigInt(src.length), T);
    let out: Uint8Array | undefined;
    for (const p of repair) if ((out = d.decode(p)) !== undefined) break;
    if (r > 0 || k >= 50000) decT.push(performance.now() - t0);
    d.free();
    if (!out) return { enc: mbps(k, median(encT)), dec: NaN };
  }
  return { enc: mbps(k, median(encT)), dec: mbps(k, median(decT)) };
}

function lcrqTool(): { path: string; dir: string } | undefined {
  if (!existsSync('/usr/include/lcrq.h')) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bench-lcrq-'));
  const path = join(dir, 'lcrq-tool');
  execFileSync('gcc', ['-O2', '-o', path, join(REPO_ROOT, 'test/fec/lcrq-tool.c'), '-llcrq']);
  return { path, dir };
}

function benchLcrq(tool: { path: string } | undefined, k: number): { enc: number; dec: number } | string {
  if (!tool) return 'n/a';
  if (k >= 10000) return 'skipped (crashes near K=10000)';
  const r = spawnSync(tool.path, ['bench', String(k * T), String(T), '1'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return `failed (${r.stdout.trim()})`;
  const [e, d] = r.stdout.trim().split(' ').map(Number);
  return { enc: mbps(k, e! / 1e6), dec: mbps(k, d! / 1e6) };
}

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : 'fail');

async function main(): Promise<void> {
  const which = (process.env['FEC_BENCH_KERNEL'] as KernelKind | undefined) ?? kernel();
  setKernel(which);
  const rq = await loadNpmRaptorq();
  const tool = lcrqTool();
  warmUp(rq);
  console.log(`RaptorQ, T = ${T} bytes, Mbit/s of source data, kernel = ${which}, node ${process.version}`);
  console.log('| K | iotupd encode cold | iotupd encode warm | iotupd decode | npm raptorq enc / dec | liblcrq enc / dec | enc warm vs npm | dec vs npm | iotupd enc warm / dec, CPU time | note |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  try {
    for (const k of KS) {
      const ours = benchOurs(k);
      const npm = benchNpm(rq, k);
      const lc = benchLcrq(tool, k);
      const npmCell = npm ? `${f0(npm.enc)} / ${f0(npm.dec)}` : 'n/a';
      const lcCell = typeof lc === 'string' ? lc : `${f0(lc.enc)} / ${f0(lc.dec)}`;
      const vsE = npm ? `${(ours.warm / npm.enc).toFixed(1)}x` : '';
      const vsD = npm ? `${(ours.dec / npm.dec).toFixed(1)}x` : '';
      console.log(`| ${k} | ${f0(ours.cold)} | ${f0(ours.warm)} | ${f0(ours.dec)} | ${npmCell} | ${lcCell} | ${vsE} | ${vsD} | ${f0(ours.warmCpu)} / ${f0(ours.decCpu)} | ${ours.note} |`);
    }
  } finally {
    if (tool) rmSync(tool.dir, { recursive: true, force: true });
  }
}

await main();
