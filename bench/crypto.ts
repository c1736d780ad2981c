// npm run bench:crypto — cost of the security layer (docs/security.md "Cost"):
//   1. Ed25519 sign / verify and full manifest verification (chain + signature + decode + policy);
//   2. per-packet authentication of 1184-byte symbol datagrams: HMAC tag, AES-256-GCM and
//      ChaCha20-Poly1305 (seal on the sender, open on the receiver), packets/s and Mbit/s;
//   3. signed digest batches (sender signs 1 per 64 datagrams, receiver hashes every datagram);
//   4. the I/O-free transfer (FountainSender -> [SecureSender] -> [ReceiveGuard] -> FountainReceiver,
//      real RaptorQ and spool on disk) with security off and on, in the same run.
// Figures only; nothing is asserted. Usage: node dist/bench/crypto.js [MiB] [--lab | --lab-only] (default 16 MiB).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeOti, otiFor } from '../src/fec/index.js';
import { FileStore, FountainReceiver } from '../src/transfer/receiver/index.js';
import { FountainSender } from '../src/transfer/sender.js';
import { BytesSource } from '../src/transfer/source.js';
import {
  BlockHasher,
  DigestSigner,
  DigestVerifier,
  ed25519Sign,
  ed25519Verify,
  fountainSealer,
  generateGroupKey,
  generateSigningKey,
  groupKeyIdOf,
  issueDelegation,
  PacketAuth,
  parseOtiFields,
  publicKeyObject,
  ReceiveGuard,
  SecureSender,
  signManifest,
  TrustStore,
  verifyManifest,
  type AuthSuite,
} from '../src/crypto/index.js';
import { encodeSymbol } from '../src/wire/fountain.js';

// Object size of the transfer sections (MiB), the first argument that is not a flag.
const mibArg = process.argv.slice(2).find((a) => !a.startsWith('--'));
const mib = Number(mibArg ?? 16);
if (!Number.isInteger(mib) || mib < 1 || mib > 4096) {
  console.error(`bench:crypto: the object size must be a whole number of MiB from 1 to 4096, got '${mibArg}'`);
  process.exit(2);
}

function time(fn: () => void, minMs = 400): { ops: number; usPerOp: number } {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 64; i++) fn();
    n += 64;
    t = performance.now();
  }
  return { ops: (n * 1000) / (t - t0), usPerOp: ((t - t0) * 1000) / n };
}

const f1 = (x: number) => x.toFixed(1);
const now = Math.floor(Date.now() / 1000);

// 1. Signatures
const root = generateSigningKey();
const signer = generateSigningKey();
signer.chain = [issueDelegation(root, signer.publicKey, { products: ['bench'], notBefore: now - 10, notAfter: now + 86400 })];
const msg = new Uint8Array(1000).fill(1);
const sig = ed25519Sign(signer.privateKey, msg);
const pub = publicKeyObject(signer.publicKey);
const s1 = time(() => ed25519Sign(signer.privateKey, msg));
const v1 = time(() => ed25519Verify(pub, msg, sig));
const object0 = new Uint8Array(100 * 1184 * 11).fill(3);
const oti0 = encodeOti(otiFor(object0.length, 1184, { maxBlockSymbols: 100, subBlocks: 1, alignment: 4 }));
const bh = new BlockHasher(parseOtiFields(oti0));
bh.update(object0);
const fields = {
  product: 'bench',
  sequence: 2n,
  version: '1',
  created: now - 5,
  expires: now + 3600,
  objectId: new Uint8Array(8),
  objectHash: new Uint8Array(32),
  size: object0.length,
  oti: oti0,
  blockHashes: bh.digest(),
};
const manifest = signManifest(fields, signer);
const trust = new TrustStore([root]);
const policy = { product: 'bench', installedSequence: 1n };
const sm = time(() => signManifest(fields, signer));
const vm = time(() => verifyManifest(manifest, trust, policy, now));
console.log('signatures (Ed25519, node:crypto)');
console.log(`  sign 1000 B            ${f1(s1.usPerOp)} us   (${Math.round(s1.ops)}/s)`);
console.log(`  verify 1000 B          ${f1(v1.usPerOp)} us   (${Math.round(v1.ops)}/s)`);
console.log(`  signManifest (${manifest.length} B, ${fields.blockHashes.length} blocks, delegated)  ${f1(sm.usPerOp)} us`);
console.log(`  verifyManifest (chain + signature + decode + policy)  ${f1(vm.usPerOp)} us`);

// 2. Per-packet authentication on symbol datagrams (16 header + 4 payload id + 1184 symbol + trailer).
console.log('\nper-packet authentication, 1184-byte symbols (Mbit/s counts the symbol bytes)');
const gk = generateGroupKey();
const objectId = new Uint8Array(8).fill(9);
for (const suite of ['mac', 'poly1305', 'aes-256-gcm', 'chacha20-poly1305'] as AuthSuite[]) {
  const auth = new PacketAuth(gk, objectId, suite);
  const rx = new PacketAuth(gk, objectId, suite);
  const sealer = fountainSealer(auth);
  const d = encodeSymbol({ objectId, flags: sealer.flags, trailer: new Uint8Array(sealer.trailerLength) }, { sbn: 0, esi: 1, symbol: new Uint8Array(1184).fill(5) });
  const seal = time(() => auth.sealInPlace(d, 16));
  auth.sealInPlace(d, 16);
  const copy = d.slice();
  const open = time(() => {
    copy.set(d);
    if (!rx.openInPlace(copy, 16)) throw new Error('open failed');
  });
  const mbit = (ops: number) => f1((ops * 1184 * 8) / 1e6);
  console.log(
    `  ${suite.padEnd(18)} trailer ${String(sealer.trailerLength).padStart(2)} B  seal ${f1(seal.usPerOp)} us (${Math.round(seal.ops)} pkt/s, ${mbit(seal.ops)} Mbit/s)  open ${f1(open.usPerOp)} us (${Math.round(open.ops)} pkt/s, ${mbit(open.ops)} Mbit/s)`,
  );
}

// 3. Signed digest batches.
{
  const ds = new DigestSigner(signer, objectId);
  const batch = Array.from({ length: 64 }, (_, i) => new Uint8Array(1232).fill(i));
  const sign = time(() => ds.sign(batch), 300);
  const body = ds.sign(batch);
  const dv = new DigestVerifier(signer.publicKey, objectId, 1 << 30);
  let k = 0;
  const verify = time(() => {
    // A fresh batch number each time, so the signature is really checked.
    const b = body.slice();
    new DataView(b.buffer).setUint32(6, k++);
    dv.addBatch(b);
  }, 300);
  const check = time(() => dv.check(batch[0] as Uint8Array));
  console.log('\nsigned digest batches (64 datagrams per batch)');
  console.log(`  sender: sign one batch ${f1(sign.usPerOp)} us = ${f1(sign.usPerOp / 64)} us per datagram`);
  console.log(`  receiver: verify one batch ${f1(verify.usPerOp)} us (the signature fails here, same cost) = ${f1(verify.usPerOp / 64)} us per datagram; digest lookup ${f1(check.usPerOp)} us per datagram`);
}

// 4. Transfer throughput, security off vs on, same run, same object, same seeded loss.
const object = new Uint8Array(mib * 2 ** 20);
for (let i = 0; i < object.length; i += 4096) object[i] = (i * 2654435761) >>> 24;
const hash = new Uint8Array(createHash('sha256').update(object).digest());
const oti = otiFor(object.length, 1184, { maxBlockSymbols: 2048, subBlocks: 1, alignment: 4 });
const otiBytes = encodeOti(oti);
const blockHasher = new BlockHasher(parseOtiFields(otiBytes));
blockHasher.update(object);
const blockHashes = blockHasher.digest();

function transfer(mode: { name: string; suite?: AuthSuite; digests?: boolean }, loss: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bench-'));
  try {
    const t0 = performance.now();
    const probe = new FountainSender({ oti, source: new BytesSource(object), hash });
    const auth = mode.suite ? new PacketAuth(gk, probe.objectId, mode.suite) : undefined;
    const cipher = mode.suite === 'aes-256-gcm' || mode.suite === 'chacha20-poly1305' ? mode.suite : undefined;
    // As the CLI does: with signed digests and no encryption, data packets carry no group MAC.
    const sealData = auth && !(mode.digests && !cipher);
    const inner = new FountainSender({ oti, source: new BytesSource(object), hash, ...(sealData ? { sealer: fountainSealer(auth) } : {}) });
    let next: (t: number) => { datagram: Uint8Array } | object = (t) => inner.next(t);
    let guard: ReceiveGuard | undefined;
    if (auth) {
      const m = signManifest(
        {
          ...fields,
          objectId: inner.objectId,
          objectHash: hash,
          size: object.length,
          oti: otiBytes,
          blockHashes,
          symbolDigests: mode.digests ?? false,
          ...(cipher ? { encryption: { cipher, groupKeyId: groupKeyIdOf(gk) } } : {}),
        },
        signer,
      );
      const secure = new SecureSender({ inner, objectId: inner.objectId, manifest: m, sealer: fountainSealer(auth), signingKey: signer, digests: mode.digests ?? false });
      next = (t) => secure.next(t);
      guard = new ReceiveGuard({ trust, policy, groupKey: gk, ...(cipher ? { cipher } : { macSuite: mode.suite as 'mac' | 'poly1305' }) });
    }
    const receiver = new FountainReceiver({ store: new FileStore({ out: join(dir, 'out.bin') }) });
    let x = 12345;
    let packets = 0;
    for (let t = 0; ; t++) {
      const s = next(t);
      if (!('datagram' in s)) continue;
      packets += 1;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      if (((x >>> 0) % 10000) / 10000 < loss) continue;
      let d: Uint8Array = s.datagram;
      if (guard) {
        const g = guard.filter(d, now);
        if (g.kind !== 'deliver') continue;
        d = g.datagram;
      }
      if (receiver.push(d) === 'complete') break;
      if (packets > 4 * (object.length / 1184)) throw new Error(`${mode.name}: did not complete`);
    }
    receiver.close();
    return performance.now() - t0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`\nI/O-free transfer of ${mib} MiB (sender + receiver in one thread, spool on ${tmpdir()}), seconds and Mbit/s of object`);
const modes: { name: string; suite?: AuthSuite; digests?: boolean }[] = [
  { name: 'off' },
  { name: 'mac (hmac-sha256)', suite: 'mac' },
  { name: 'mac (poly1305)', suite: 'poly1305' },
  { name: 'mac + signed digests', suite: 'mac' as AuthSuite, digests: true },
  { name: 'aes-256-gcm', suite: 'aes-256-gcm' as AuthSuite },
  { name: 'aes-256-gcm + digests', suite: 'aes-256-gcm' as AuthSuite, digests: true },
  { name: 'chacha20-poly1305', suite: 'chacha20-poly1305' as AuthSuite },
  { name: 'chacha20-poly1305 + digests', suite: 'chacha20-poly1305' as AuthSuite, digests: true },
];
// Modes interleaved and repeated, best of REPS: the build machine is shared and noisy.
const REPS = Number(process.env.BENCH_REPS ?? 3);
for (const loss of process.argv.includes('--lab-only') ? [] : [0, 0.1]) {
  transfer(modes[0]!, loss); // warm-up (JIT, FEC plans)
  const best = modes.map(() => Infinity);
  for (let rep = 0; rep < REPS; rep++) for (const [i, m] of modes.entries()) best[i] = Math.min(best[i]!, transfer(m, loss));
  const base = best[0]!;
  console.log(`  loss ${loss * 100} %`);
  for (const [i, m] of modes.entries()) {
    const ms = best[i]!;
    console.log(`    ${m.name.padEnd(24)} ${(ms / 1000).toFixed(2)} s  ${f1((object.length * 8) / (ms / 1000) / 1e6)} Mbit/s  ${i === 0 ? '' : `${((ms / base - 1) * 100).toFixed(1)} % slower`}`);
  }
}

// 5. Real multicast in the lab (root; `node dist/bench/crypto.js MiB --lab`): one sender, one
// receiver behind a rate cap, the CLI with security off and on, same run; seconds until the
// receiver holds the verified copy. BENCH_RATE (Mbit/s, default 200); --lab-only skips section 4.
if (process.argv.includes('--lab') || process.argv.includes('--lab-only')) await labCompare();

async function labCompare(): Promise<void> {
  const { Lab, labSupport } = await import('../src/lab/index.js');
  const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { saveKeyPair, saveGroupKey } = await import('../src/crypto/index.js');
  const support = labSupport();
  if (!support.ok) {
    console.log(`\nlab comparison skipped: ${support.reason}`);
    return;
  }
  const here = fileURLToPath(new URL('.', import.meta.url));
  const index = join(here, '..', 'src', 'cli', 'commands', 'index.js');
  const script = existsSync(index) && /recvCommand/.test(readFileSync(index, 'utf8')) ? join(here, '..', 'src', 'cli', 'main.js') : join(here, '..', 'test', 'transfer', 'cli-entry.js');
  const rateMbit = Number(process.env.BENCH_RATE ?? 200);
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bench-lab-'));
  const file = join(dir, 'image.bin');
  writeFileSync(file, object);
  saveKeyPair(join(dir, 'root'), root);
  saveKeyPair(join(dir, 'signer'), signer);
  saveGroupKey(join(dir, 'group.key'), gk);
  const lab = await Lab.create({ hosts: ['sender', 'dev'] });
  try {
    await lab.impair('dev', { rateMbit: rateMbit + 10 });
    const runs: { name: string; send: string[]; recv: string[] }[] = [
      { name: 'off', send: [], recv: [] },
      { name: 'mac', send: ['--key', join(dir, 'signer.key'), '--group-key', join(dir, 'group.key')], recv: ['--group-key', join(dir, 'group.key')] },
      { name: 'signed digests', send: ['--key', join(dir, 'signer.key'), '--group-key', join(dir, 'group.key'), '--digests'], recv: ['--group-key', join(dir, 'group.key')] },
      { name: 'chacha20-poly1305', send: ['--key', join(dir, 'signer.key'), '--group-key', join(dir, 'group.key'), '--encrypt'], recv: ['--group-key', join(dir, 'group.key'), '--encrypt'] },
      { name: 'chacha20-poly1305 + dig.', send: ['--key', join(dir, 'signer.key'), '--group-key', join(dir, 'group.key'), '--encrypt', '--digests'], recv: ['--group-key', join(dir, 'group.key'), '--encrypt'] },
      { name: 'aes-256-gcm', send: ['--key', join(dir, 'signer.key'), '--group-key', join(dir, 'group.key'), '--encrypt', '--cipher', 'aes-256-gcm'], recv: ['--group-key', join(dir, 'group.key'), '--encrypt', '--cipher', 'aes-256-gcm'] },
    ];
    console.log(`\nreal multicast in the lab: ${mib} MiB, sender --rate ${rateMbit}, receiver capped at ${rateMbit + 10} Mbit/s; seconds from receiver start to verified copy, best and median of ${REPS}`);
    const times: number[][] = runs.map(() => []);
    let n = 0;
    for (let rep = 0; rep < REPS; rep++) {
      for (const [i, r] of runs.entries()) {
        const ch = ['--channel', `bench.crypto.${n}`];
        const out = join(dir, `out-${n}.bin`);
        const secure = r.send.length > 0;
        const seq = ['--product', 'bench', '--sequence', String(10 + n)];
        n += 1;
        const dev = lab.host('dev');
        const snd = lab.host('sender');
        const t0 = performance.now();
        const rx = lab.spawnNode(dev, script, ['recv', out, ...ch, '--interface', dev.ifname, '--json', ...(secure ? ['--trust', join(dir, 'root.pub'), '--state', join(dir, `state-${n}`), '--product', 'bench', ...r.recv] : [])]);
        const rxDone = new Promise<number | null>((res) => rx.once('close', (c) => res(c)));
        await new Promise((res) => setTimeout(res, 300));
        const tx = lab.spawnNode(snd, script, ['send', file, ...ch, '--interface', snd.ifname, '--rate', String(rateMbit), '--json', ...(secure ? [...r.send, ...seq] : [])]);
        const code = await Promise.race([rxDone, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 120_000))]);
        const secs = (performance.now() - t0) / 1000 - 0.3;
        tx.kill('SIGTERM');
        if (code === 'timeout') rx.kill('SIGKILL');
        const ok = code === 0 && Buffer.compare(readFileSync(out), Buffer.from(object)) === 0;
        rmSync(out, { force: true });
        if (!ok) console.log(`  ${r.name}: FAILED (${String(code)})`);
        else times[i]!.push(secs);
      }
    }
    const median = (xs: number[]) => {
      const v = xs.slice().sort((a, b) => a - b);
      return v.length === 0 ? NaN : v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    };
    const best = times.map((xs) => (xs.length ? Math.min(...xs) : NaN));
    const med = times.map(median);
    for (const [i, r] of runs.entries()) {
      const slower = (x: number, base: number) => (i === 0 ? '' : `${((x / base - 1) * 100).toFixed(1).padStart(5)} %`);
      const failed = REPS - times[i]!.length;
      console.log(
        `  ${r.name.padEnd(24)} best ${best[i]!.toFixed(2)} s ${slower(best[i]!, best[0]!)}  median ${med[i]!.toFixed(2)} s ${slower(med[i]!, med[0]!)}  ${f1((object.length * 8) / best[i]! / 1e6)} Mbit/s${failed ? `  (${failed} failed)` : ''}`,
      );
    }
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
