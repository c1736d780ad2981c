import type { Command } from '../command.js';
import { parse } from '../command.js';
import { UsageError } from '../../errors.js';
import {
  generateGroupKey,
  generateSigningKey,
  groupKeyIdOf,
  issueDelegation,
  issueRootRotation,
  loadSigningKey,
  saveGroupKey,
  saveKeyPair,
  toHex,
  U64_MAX,
} from '../../crypto/index.js';

const usage = `usage: iotupd keygen --out PREFIX [options]
       iotupd keygen --group FILE

Writes an Ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub (public). Without
--root the key is a root (pin its .pub on devices with 'iotupd recv --trust').

  --out PREFIX          where to write PREFIX.key and PREFIX.pub
  --root ROOT.key       delegate the new key from this (offline) root key; needs --product
  --product NAME        product / device class the delegated key may sign for (repeatable, '*' = any)
  --expires DATE        end of the delegation (ISO date, or +DAYSd; default +365d)
  --not-before DATE     start of the delegation (default now)
  --min-sequence N      lowest release sequence the key may sign (default 1)
  --max-sequence N      highest release sequence the key may sign (default unbounded; bounding it
                        limits what a stolen signing key can fast-forward devices to)
  --rotate-from OLD.key make the new key a root introduced by the old root (root rotation)
  --group FILE          write a random 32-byte group key for packet authentication (mode 0600)
  --force               overwrite existing files`;

/** Unix seconds from an ISO date or '+Nd' relative to now. */
export function parseTime(name: string, raw: string | undefined, fallback: number, now = Math.floor(Date.now() / 1000)): number {
  if (raw === undefined) return fallback;
  const rel = /^\+(\d+)d$/.exec(raw);
  if (rel) return now + Number(rel[1]) * 86400;
  const t = Date.parse(raw);
  if (!Number.isFinite(t) || t < 0) throw new UsageError(`--${name} must be an ISO date or +DAYSd, got '${raw}'`);
  return Math.floor(t / 1000);
}

function parseSeq(name: string, raw: string | undefined, fallback: bigint): bigint {
  if (raw === undefined) return fallback;
  if (!/^\d{1,20}$/.test(raw) || BigInt(raw) > U64_MAX) throw new UsageError(`--${name} must be an integer 0..2^64-1`);
  return BigInt(raw);
}

export const keygenCommand: Command = {
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      out: { type: 'string' },
      root: { type: 'string' },
      product: { type: 'string', multiple: true },
      expires: { type: 'string' },
      'not-before': { type: 'string' },
      'min-sequence': { type: 'string' },
      'max-sequence': { type: 'string' },
      'rotate-from': { type: 'string' },
      group: { type: 'string' },
      force: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const force = values.force ?? false;
    if (values.group !== undefined) {
      if (values.out !== undefined) throw new UsageError('--group and --out are separate invocations');
      const gk = generateGroupKey();
      saveGroupKey(values.group, gk, force);
      console.log(`group key ${toHex(groupKeyIdOf(gk))} written to ${values.group} (mode 0600)`);
      return 0;
    }
    if (values.out === undefined) throw new UsageError('--out PREFIX is required (or --group FILE)');
    if (values.root !== undefined && values['rotate-from'] !== undefined) throw new UsageError('--root and --rotate-from exclude each other');
    const now = Math.floor(Date.now() / 1000);
    const key = generateSigningKey();
    let role = 'root key';
    if (values.root !== undefined) {
      const root = loadSigningKey(values.root);
      const products = values.product ?? [];
      if (products.length === 0) throw new UsageError('a delegated key needs at least one --product');
      const notBefore = parseTime('not-before', values['not-before'], now);
      const notAfter = parseTime('expires', values.expires, now + 365 * 86400);
      const cert = issueDelegation(root, key.publicKey, {
        products,
        notBefore,
        notAfter,
        minSequence: parseSeq('min-sequence', values['min-sequence'], 1n),
        maxSequence: parseSeq('max-sequence', values['max-sequence'], U64_MAX),
      });
      // The root's own chain (root rotations) comes first, so devices pinning an older root follow it.
      key.chain = [...root.chain, cert];
      role = `signing key delegated by root ${toHex(root.keyId)} for ${products.join(', ')} until ${new Date(notAfter * 1000).toISOString()}`;
    } else if (values['rotate-from'] !== undefined) {
      const old = loadSigningKey(values['rotate-from']);
      key.chain = [...old.chain, issueRootRotation(old, key.publicKey, parseTime('not-before', values['not-before'], now))];
      role = `root key introduced by old root ${toHex(old.keyId)}`;
    } else if (values.product || values.expires || values['max-sequence'] || values['min-sequence']) {
      throw new UsageError('--product, --expires and --*-sequence apply to a delegated key: add --root ROOT.key');
    }
    const { keyFile, pubFile } = saveKeyPair(values.out, key, force);
    console.log(`key ${toHex(key.keyId)}: ${role}\n  private: ${keyFile} (mode 0600)\n  public:  ${pubFile}`);
    return 0;
  },
};
