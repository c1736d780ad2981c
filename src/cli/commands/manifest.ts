import { readFileSync } from 'node:fs';
import { DEFAULT_SYMBOL_SIZE } from '../../wire/fountain.js';
import { writeNewFile } from '../../crypto/keys.js';
import { numberOption } from '../command.js';
import { parseTime } from './keygen.js';
import { DEFAULT_RELEASE_BLOCK_SYMBOLS, signReleaseManifest } from '../../publish/create.js';
import type { Command } from '../command.js';
import { parse } from '../command.js';
import { StorageError, UsageError } from '../../errors.js';
import {
  decodeCertificateUnverified,
  inspectManifest,
  keyIdOf,
  loadGroupKey,
  loadPublicKey,
  loadSigningKey,
  toHex,
  TrustStore,
  verifyManifest,
  type VerifyPolicy,
} from '../../crypto/index.js';

const usage = `usage: iotupd manifest inspect FILE [--trust ROOT.pub ...] [--product NAME] [--installed N] [--json]
       iotupd manifest sign IMAGE --key SIGNER.key --product NAME --sequence N [options] --out FILE

sign: hashes IMAGE (SHA-256 and one hash per RaptorQ source block) and writes a signed manifest, so
the signing key can stay off the sending machine ('iotupd send IMAGE --manifest FILE'). The symbol
size and block size must be those the sender will use.
  --version TEXT         human version string (default: the sequence number)
  --expires DATE         ISO date or +DAYSd (default +30d)
  --symbol-size T --block-symbols K   as for 'iotupd send' (defaults 1184, 8192)
  --group-key FILE --encrypt [--cipher chacha20-poly1305|aes-256-gcm]   announce encryption
  --digests              require signed digest batches (the sender then needs --key too)
  --rollout PERCENT      staged rollout share (0.01..100)

inspect: prints a signed manifest. Without --trust the fields are shown UNVERIFIED; with --trust (repeatable)
the manifest is verified as a device would (signature, chain, product, expiry, sequence) and the
command exits 1 with the reason if a device would refuse it.`;

function iso(s: number): string {
  return s >= 8.64e12 ? 'never' : new Date(s * 1000).toISOString();
}

export const manifestCommand: Command = {
  usage,
  async run(argv) {
    if (argv[0] === 'sign') return sign(argv.slice(1));
    const { values, positionals } = parse(argv, {
      trust: { type: 'string', multiple: true },
      product: { type: 'string' },
      installed: { type: 'string' },
      json: { type: 'boolean' },
    });
    const [sub, file, ...rest] = positionals;
    if (sub !== 'inspect' || file === undefined || rest.length > 0) throw new UsageError(usage.split('\n')[0] as string);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (err) {
      throw new StorageError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const view = inspectManifest(bytes);
    const f = view.fields;
    let verdict = 'UNVERIFIED (no --trust given)';
    let code = 0;
    if (values.trust && values.trust.length > 0) {
      const trust = new TrustStore(values.trust.map((t) => loadPublicKey(t)));
      if (values.installed !== undefined && !/^\d{1,20}$/.test(values.installed)) throw new UsageError('--installed must be an integer');
      const policy: VerifyPolicy = { product: values.product ?? f.product, installedSequence: BigInt(values.installed ?? '0') };
      try {
        const m = verifyManifest(bytes, trust, policy, Math.floor(Date.now() / 1000));
        verdict = `VALID: signed by ${toHex(m.signerKeyId)}, anchored at pinned key ${toHex(m.anchorKeyId)}`;
      } catch (err) {
        verdict = `REFUSED ${(err as { code?: string }).code ?? ''}: ${(err as Error).message}`;
        code = 1;
      }
    }
    const chain = view.chain.map((c) => {
      const d = decodeCertificateUnverified(c);
      return d.kind === 'delegation'
        ? `delegation by ${toHex(d.issuerKeyId)} to key ${toHex(keyIdOf(d.subjectKey))}, products ${d.products.join(',')} ${iso(d.notBefore)}..${iso(d.notAfter)} sequences ${d.minSequence}..${d.maxSequence}`
        : `root rotation by ${toHex(d.issuerKeyId)} to key ${toHex(keyIdOf(d.subjectKey))} from ${iso(d.notBefore)}`;
    });
    const out = {
      verdict,
      product: f.product,
      sequence: f.sequence.toString(),
      version: f.version,
      created: iso(f.created),
      expires: iso(f.expires),
      objectId: toHex(f.objectId),
      objectHash: toHex(f.objectHash),
      size: f.size,
      oti: toHex(f.oti),
      blocks: f.blockHashes.length,
      encryption: f.encryption ? `${f.encryption.cipher} group key ${toHex(f.encryption.groupKeyId)}` : 'none',
      rollout: f.rolloutBasisPoints === undefined ? '100%' : `${f.rolloutBasisPoints / 100}%`,
      symbolDigests: f.symbolDigests ?? false,
      signer: toHex(view.signerKeyId),
      chain,
    };
    if (values.json) console.log(JSON.stringify(out));
    else for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(14)} ${Array.isArray(v) ? v.join('\n' + ' '.repeat(15)) : String(v)}`);
    return code;
  },
};

async function sign(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    key: { type: 'string' },
    product: { type: 'string' },
    sequence: { type: 'string' },
    version: { type: 'string' },
    expires: { type: 'string' },
    'symbol-size': { type: 'string' },
    'block-symbols': { type: 'string' },
    'group-key': { type: 'string' },
    encrypt: { type: 'boolean' },
    cipher: { type: 'string' },
    digests: { type: 'boolean' },
    rollout: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
  });
  const [image, ...rest] = positionals;
  if (image === undefined || rest.length > 0) throw new UsageError('usage: iotupd manifest sign IMAGE --key SIGNER.key --product NAME --sequence N --out FILE');
  if (values.key === undefined || values.product === undefined || values.sequence === undefined || values.out === undefined) {
    throw new UsageError('--key, --product, --sequence and --out are required');
  }
  if (!/^\d{1,20}$/.test(values.sequence) || BigInt(values.sequence) < 1n || BigInt(values.sequence) >= 2n ** 64n) throw new UsageError('--sequence must be an integer 1..2^64-1');
  const cipher = values.cipher ?? 'chacha20-poly1305';
  if (cipher !== 'aes-256-gcm' && cipher !== 'chacha20-poly1305') throw new UsageError('--cipher must be aes-256-gcm or chacha20-poly1305');
  if (values.encrypt && values['group-key'] === undefined) throw new UsageError('--encrypt needs --group-key');
  const key = loadSigningKey(values.key);
  const now = Math.floor(Date.now() / 1000);
  const rollout = values.rollout === undefined ? undefined : Math.round(numberOption('rollout', values.rollout, 100, 0.01, 100) * 100);
  const { manifest, objectId } = await signReleaseManifest({
    image,
    key,
    product: values.product,
    sequence: BigInt(values.sequence),
    ...(values.version !== undefined ? { version: values.version } : {}),
    created: now,
    expires: parseTime('expires', values.expires, now + 30 * 86400, now),
    symbolSize: numberOption('symbol-size', values['symbol-size'], DEFAULT_SYMBOL_SIZE, 4, 65532),
    maxBlockSymbols: numberOption('block-symbols', values['block-symbols'], DEFAULT_RELEASE_BLOCK_SYMBOLS, 1, 56403),
    ...(values.encrypt ? { groupKey: loadGroupKey(values['group-key'] as string), cipher } : {}),
    ...(values.digests ? { digests: true } : {}),
    ...(rollout !== undefined ? { policy: { rolloutBasisPoints: rollout } } : {}),
  });
  writeNewFile(values.out, manifest, 0o644, values.force ?? false);
  console.log(`manifest for ${toHex(objectId)} (sequence ${values.sequence}, ${manifest.length} bytes) signed by ${toHex(key.keyId)}: ${values.out}`);
  return 0;
}
