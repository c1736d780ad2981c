// The options `iotupd release create` and `iotupd manifest sign` share: what a release manifest
// is signed with (the signer, product, sequence, expiry, block layout, encryption, digests),
// checked once and mapped to the fields of signReleaseManifest / createRelease.
import { loadGroupKey, loadSigningKey } from '../crypto/index.js';
import { UsageError } from '../errors.js';
import { DEFAULT_RELEASE_BLOCK_SYMBOLS, type ReleaseManifestOptions } from '../publish/create.js';
import { DEFAULT_SYMBOL_SIZE } from '../wire/fountain.js';
import { numberOption } from './command.js';
import { parseTime } from './commands/keygen.js';

export const SIGN_OPTIONS = {
  key: { type: 'string' },
  product: { type: 'string' },
  sequence: { type: 'string' },
  version: { type: 'string' },
  expires: { type: 'string' },
  rollout: { type: 'string' },
  'symbol-size': { type: 'string' },
  'block-symbols': { type: 'string' },
  'group-key': { type: 'string' },
  encrypt: { type: 'boolean' },
  cipher: { type: 'string' },
  digests: { type: 'boolean' },
} as const;

interface SignValues {
  key?: string;
  product?: string;
  sequence?: string;
  version?: string;
  expires?: string;
  rollout?: string;
  'symbol-size'?: string;
  'block-symbols'?: string;
  'group-key'?: string;
  encrypt?: boolean;
  cipher?: string;
  digests?: boolean;
}

type Policy = NonNullable<ReleaseManifestOptions['policy']>;

/**
 * The manifest's fields from the command line, `image` and `now` given; --key, --product and
 * --sequence must be there (the caller says so first, naming its own required options). The
 * policy holds --rollout; `morePolicy` (release create) checks and adds its other policy options
 * before any file is read, so every mistake on the command line is reported first.
 */
export function signOptions(v: SignValues, image: string, now: number, morePolicy?: (policy: Policy, expires: number) => void): ReleaseManifestOptions {
  if (v.key === undefined || v.product === undefined || v.sequence === undefined) throw new UsageError('--key, --product and --sequence are required');
  if (!/^\d{1,20}$/.test(v.sequence) || BigInt(v.sequence) < 1n || BigInt(v.sequence) >= 2n ** 64n) throw new UsageError('--sequence must be an integer 1..2^64-1');
  const cipher = v.cipher ?? 'chacha20-poly1305';
  if (cipher !== 'aes-256-gcm' && cipher !== 'chacha20-poly1305') throw new UsageError('--cipher must be aes-256-gcm or chacha20-poly1305');
  if (v.encrypt && v['group-key'] === undefined) throw new UsageError('--encrypt needs --group-key');
  const expires = parseTime('expires', v.expires, now + 30 * 86400, now);
  const policy: Policy = {};
  if (v.rollout !== undefined) policy.rolloutBasisPoints = Math.round(numberOption('rollout', v.rollout, 100, 0.01, 100) * 100);
  const symbolSize = numberOption('symbol-size', v['symbol-size'], DEFAULT_SYMBOL_SIZE, 4, 65532);
  const maxBlockSymbols = numberOption('block-symbols', v['block-symbols'], DEFAULT_RELEASE_BLOCK_SYMBOLS, 1, 56403);
  morePolicy?.(policy, expires);
  return {
    image,
    key: loadSigningKey(v.key),
    product: v.product,
    sequence: BigInt(v.sequence),
    ...(v.version !== undefined ? { version: v.version } : {}),
    created: now,
    expires,
    policy,
    symbolSize,
    maxBlockSymbols,
    ...(v.encrypt ? { groupKey: loadGroupKey(v['group-key'] as string), cipher } : {}),
    ...(v.digests ? { digests: true } : {}),
  };
}
