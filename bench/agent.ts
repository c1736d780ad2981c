// npm run bench:agent (root): the device agent daemon (`iotupd agent --config F`) in the network lab.
// 1. Idle: the daemon listens on its announce channel for BENCH_IDLE_S seconds (default 60) while
//    nothing is announced; its CPU share (utime + stime from /proc over wall time) and its resident
//    memory (VmRSS at the end, VmHWM peak). Goal: at most 1 % of a core and 60 MiB.
// 2. Update: from the first beacon the daemon accepts (its `announced` line) to the committed
//    update (`installed`) of a BENCH_MIB (default 16) MiB image served at 50 Mbit/s, on a clean
//    link and on a link with 10 % loss. The wire time of the image alone at that rate is printed
//    beside it.
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deviceIds, makeFleetKeys, spawnAgent, spawnPublisher, writeAgentConfig } from '../src/lab/fleet.js';
import { Lab, labSupport } from '../src/lab/index.js';
import { createRelease } from '../src/publish/create.js';

const MiB = 2 ** 20;
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
const SIZE = Number(process.env.BENCH_MIB ?? 16) * MiB;
const RATE_MBIT = 50;
const PRODUCT = 'bench-agent';
const CLK_TCK = 100;

function procStat(pid: number): { cpuS: number; rssMiB: number; hwmMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(f[11]) + Number(f[12])) / CLK_TCK;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuS, rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

async function main(): Promise<void> {
  const support = labSupport();
  if (!support.ok || process.getuid?.() !== 0) {
    console.log(`bench:agent needs root and the network lab: ${support.ok ? 'not root' : support.reason}`);
    process.exitCode = 1;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bench-agent-'));
  const lab = await Lab.create({ hosts: ['pub', 'idle', 'clean', 'lossy'] });
  try {
    const keys = makeFleetKeys(dir, PRODUCT);
    const agent = (name: string, id: string) => {
      const d = join(dir, name);
      mkdirSync(d);
      const cfg = writeAgentConfig(join(d, 'agent.json'), { deviceId: id, product: PRODUCT, trust: [keys.rootPub], stateDir: join(d, 'state'), target: join(d, 'image.bin'), interface: lab.host(name).ifname });
      return spawnAgent(lab, name, cfg, undefined, 3600);
    };

    // 1. Idle.
    const idle = agent('idle', 'idle-0');
    await idle.waitFor((l) => l.type === 'ready', 15_000);
    await sleep(2000); // past start-up (module loading, JIT)
    if (idle.pid === undefined) throw new Error('the idle agent has no process id');
    const idlePid = idle.pid;
    const a = procStat(idlePid);
    const t0 = performance.now();
    await sleep(IDLE_S * 1000);
    const b = procStat(idlePid);
    const wall = (performance.now() - t0) / 1000;
    const cpuPct = (100 * (b.cpuS - a.cpuS)) / wall;
    idle.stop();
    await idle.exit;

    // 2. Beacon to committed update.
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomFillSync(Buffer.alloc(SIZE)));
    await createRelease({ image, key: keys.signer, product: PRODUCT, sequence: 1n, version: '1', out: join(releases, 'r1') });
    await lab.impair('lossy', { lossPercent: 10 });
    const [idClean, idLossy] = deviceIds('dev', PRODUCT, 1n, 10000, true, 2) as [string, string];
    const clean = agent('clean', idClean);
    const lossy = agent('lossy', idLossy);
    await Promise.all([clean.waitFor((l) => l.type === 'ready', 15_000), lossy.waitFor((l) => l.type === 'ready', 15_000)]);
    const pub = spawnPublisher(lab, 'pub', { signerKey: keys.signerKey, releases, rateMbit: RATE_MBIT, interval: 1 });
    const rows: string[][] = [];
    for (const [name, p] of [
      ['clean link', clean],
      ['10 % loss', lossy],
    ] as const) {
      const done = await p.waitFor((l) => ['installed', 'failed', 'rolled-back'].includes(String(l.type)), 180_000);
      const first = p.of('announced')[0];
      const secs = (Number(done.at) - Number(first?.at)) / 1000;
      rows.push([`beacon to committed update, ${SIZE / MiB} MiB at ${RATE_MBIT} Mbit/s, ${name}`, done.type === 'installed' ? `${secs.toFixed(2)} s` : `${String(done.type)}: ${String(done.reason)}`, `image alone on the wire: ${((SIZE * 8) / (RATE_MBIT * 1e6)).toFixed(2)} s`]);
    }
    clean.stop();
    lossy.stop();
    pub.stop();
    await Promise.all([clean.exit, lossy.exit, pub.exit]);

    const table = [
      ['measure', 'result', 'note'],
      [`idle agent daemon, ${IDLE_S} s on its announce channel: CPU`, `${cpuPct.toFixed(2)} % of a core`, 'goal <= 1 %'],
      ['idle agent daemon: memory', `RSS ${b.rssMiB.toFixed(1)} MiB, peak ${b.hwmMiB.toFixed(1)} MiB`, 'goal <= 60 MiB'],
      ...rows,
    ];
    console.log(JSON.stringify({ idleSeconds: IDLE_S, cpuPercent: cpuPct, rssMiB: b.rssMiB, hwmMiB: b.hwmMiB, updates: rows.map((r) => r[1]) }));
    console.log([table[0] as string[], ['---', '---', '---'], ...table.slice(1)].map((c) => `| ${c.join(' | ')} |`).join('\n'));
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
