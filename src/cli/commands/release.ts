import { resolve } from 'node:path';
import type { RolloutWave } from '../../crypto/index.js';
import { UsageError } from '../../errors.js';
import { createRelease, policyList } from '../../publish/create.js';
import { numberOption, parse, type Command } from '../command.js';
import { SIGN_OPTIONS, signOptions } from '../sign-options.js';

/** ISO date, +N[smhd] from now, or unix seconds. */
function parseWhen(name: string, raw: string, now: number): number {
  const rel = /^\+(\d{1,9})([smhd])$/.exec(raw);
  if (rel) return now + Number(rel[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{1,12}$/.test(raw)) return Number(raw);
  const t = Date.parse(raw);
  if (!Number.isFinite(t) || t < 0) throw new UsageError(`--${name} must be an ISO date, +N followed by s, m, h or d, or unix seconds, got '${raw}'`);
  return Math.floor(t / 1000);
}

function list(name: string, raw: string | undefined, max: number): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw.split(',').map((x) => x.trim());
  for (const x of items) {
    if (x.length === 0 || Buffer.byteLength(x) > max || !/^[\x21-\x7e]+$/.test(x)) throw new UsageError(`--${name}: each name must be 1 to ${max} printable ASCII characters without spaces`);
  }
  if (items.length > 16) throw new UsageError(`--${name}: at most 16 names`);
  return policyList(items);
}

const usage = `usage: iotupd release create --image IMAGE --key SIGNER.key --product NAME --sequence N
                             --out DIR [--version TEXT] [policy options] [--json]

Makes a release directory for 'iotupd publish': DIR/image (a hard link to IMAGE where the file
system allows, else a copy) and DIR/manifest (signed, as 'iotupd manifest sign'). DIR must not
exist; it appears complete or not at all (built beside it, then renamed), so a publisher
watching the parent directory never sees half a release.
  --version TEXT         human version string (default: the sequence number)
  --expires DATE         ISO date or +DAYSd (default +30d)
Release policy (honoured by the device agent, docs/agent.md "Rollout rules"):
  --rollout PERCENT      staged rollout share (0.01..100)
  --wave TIME=PERCENT    a rollout wave: from TIME on, PERCENT of the devices (repeat, up to 16;
                         times increasing, shares not decreasing; excludes --rollout)
  --device-class A[,B]   only devices of these classes install
  --hardware H[,H2]      only devices with this hardware install
  --active-from TIME --active-until TIME   activation window (default: created .. expires)
  --switch-at TIME       devices with a trusted clock install ahead and switch at TIME
  TIME is an ISO date, +N followed by s, m, h or d (from now), or unix seconds.
  --symbol-size T --block-symbols K   as for 'iotupd send' (defaults 1184, 8192)
  --group-key FILE --encrypt [--cipher chacha20-poly1305|aes-256-gcm]   announce encryption
  --digests              require signed digest batches
  --copy                 always copy the image (never a hard link)

To halt a release later: write 'stop' or 'rollback' into DIR/halt (see docs/publish.md).`;

export const releaseCommand: Command = {
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'create') throw new UsageError(usage.split('\n')[0] as string);
    const { values, positionals } = parse(rest, {
      ...SIGN_OPTIONS,
      image: { type: 'string' },
      wave: { type: 'string', multiple: true },
      'device-class': { type: 'string' },
      hardware: { type: 'string' },
      'active-from': { type: 'string' },
      'active-until': { type: 'string' },
      'switch-at': { type: 'string' },
      copy: { type: 'boolean' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const { image, key: keyFile, product, sequence, out } = values;
    if (image === undefined || keyFile === undefined || product === undefined || sequence === undefined || out === undefined) {
      throw new UsageError('--image, --key, --product, --sequence and --out are required');
    }
    const now = Math.floor(Date.now() / 1000);
    const signing = signOptions(values, image, now, (policy, expires) => {
      if (expires <= now) throw new UsageError('--expires must be in the future');
      const waves = values.wave ?? [];
      if (waves.length > 0) {
        if (policy.rolloutBasisPoints !== undefined) throw new UsageError('--wave and --rollout exclude each other');
        if (waves.length > 16) throw new UsageError('at most 16 --wave options');
        const parsed: RolloutWave[] = waves.map((w) => {
          const m = /^(.+)=([0-9.]+)%?$/.exec(w);
          if (!m) throw new UsageError(`--wave must be TIME=PERCENT, got '${w}'`);
          return { start: parseWhen('wave', m[1] as string, now), basisPoints: Math.round(numberOption('wave', m[2], 100, 0.01, 100) * 100) };
        });
        for (let i = 1; i < parsed.length; i++) {
          const [a, b] = [parsed[i - 1] as RolloutWave, parsed[i] as RolloutWave];
          if (b.start <= a.start) throw new UsageError('--wave: each wave must start after the one before');
          if (b.basisPoints < a.basisPoints) throw new UsageError('--wave: a wave cannot reach fewer devices than the one before');
        }
        policy.rolloutWaves = parsed;
      }
      const classes = list('device-class', values['device-class'], 32);
      if (classes) policy.deviceClasses = classes;
      const hardware = list('hardware', values.hardware, 64);
      if (hardware) policy.hardware = hardware;
      if (values['active-from'] !== undefined || values['active-until'] !== undefined) {
        const notBefore = values['active-from'] === undefined ? now : parseWhen('active-from', values['active-from'], now);
        const notAfter = values['active-until'] === undefined ? expires : parseWhen('active-until', values['active-until'], now);
        if (notBefore >= notAfter) throw new UsageError('--active-from must be before --active-until');
        policy.activation = { notBefore, notAfter };
      }
      if (values['switch-at'] !== undefined) policy.switchAt = parseWhen('switch-at', values['switch-at'], now);
    });
    const r = await createRelease({ ...signing, out: resolve(out), ...(values.copy ? { copy: true } : {}) });
    if (values.json) console.log(JSON.stringify({ type: 'release', ...r }));
    else console.log(`release ${product} ${sequence} (${r.version}), manifest id ${r.manifestId.slice(0, 16)}, ${r.size} bytes: ${r.dir}`);
    return 0;
  },
};
