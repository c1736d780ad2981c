import { readFileSync } from 'node:fs';
import { writeNewFile } from '../../crypto/keys.js';
import { signReleaseManifest } from '../../publish/create.js';
import type { Command } from '../command.js';
import { parse } from '../command.js';
import { SIGN_OPTIONS, signOptions } from '../sign-options.js';
import { StorageError, UsageError } from '../../errors.js';
import {
  decodeCertificateUnverified,
  inspectManifest,
  keyIdOf,
  loadPublicKey,
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
    ...SIGN_OPTIONS,
    out: { type: 'string' },
    force: { type: 'boolean' },
  });
  const [image, ...rest] = positionals;
  if (image === undefined || rest.length > 0) throw new UsageError('usage: iotupd manifest sign IMAGE --key SIGNER.key --product NAME --sequence N --out FILE');
  if (values.key === undefined || values.product === undefined || values.sequence === undefined || values.out === undefined) {
    throw new UsageError('--key, --product, --sequence and --out are required');
  }
  const signing = signOptions(values, image, Math.floor(Date.now() / 1000));
  const { manifest, objectId } = await signReleaseManifest(signing);
  writeNewFile(values.out, manifest, 0o644, values.force ?? false);
  console.log(`manifest for ${toHex(objectId)} (sequence ${values.sequence}, ${manifest.length} bytes) signed by ${toHex(signing.key.keyId)}: ${values.out}`);
  return 0;
}
