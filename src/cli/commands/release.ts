import { chmodSync, copyFileSync, constants as fsConstants, existsSync, linkSync, mkdirSync, renameSync, rmSync, mkdtempSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { blockCommitments, loadGroupKey, loadSigningKey, signFileManifest, toHex, writeNewFile } from '../../crypto/index.js';
import { StorageError, UsageError } from '../../errors.js';
import { loadReleaseDir } from '../../publish/release.js';
import { createFileSender } from '../../transfer/index.js';
import { DEFAULT_SYMBOL_SIZE } from '../../wire/fountain.js';
import { numberOption, parse, type Command } from '../command.js';
import { parseTime } from './keygen.js';

const usage = `usage: iotupd release create --image IMAGE --key SIGNER.key --product NAME --sequence N
                             --out DIR [--version TEXT] [policy options] [--json]

Makes a release directory for 'iotupd publish': DIR/image (a hard link to IMAGE where the file
system allows, else a copy) and DIR/manifest (signed, as 'iotupd manifest sign'). DIR must not
exist; it appears complete or not at all (built beside it, then renamed), so a publisher
watching the parent directory never sees half a release.
  --version TEXT         human version string (default: the sequence number)
  --expires DATE         ISO date or +DAYSd (default +30d)
  --rollout PERCENT      staged rollout share (0.01..100)
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
      image: { type: 'string' },
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
      copy: { type: 'boolean' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const { image, key: keyFile, product, sequence, out } = values;
    if (image === undefined || keyFile === undefined || product === undefined || sequence === undefined || out === undefined) {
      throw new UsageError('--image, --key, --product, --sequence and --out are required');
    }
    if (!/^\d{1,20}$/.test(sequence) || BigInt(sequence) < 1n || BigInt(sequence) >= 2n ** 64n) throw new UsageError('--sequence must be an integer 1..2^64-1');
    const cipher = values.cipher ?? 'chacha20-poly1305';
    if (cipher !== 'aes-256-gcm' && cipher !== 'chacha20-poly1305') throw new UsageError('--cipher must be aes-256-gcm or chacha20-poly1305');
    if (values.encrypt && values['group-key'] === undefined) throw new UsageError('--encrypt needs --group-key');
    const dir = resolve(out);
    if (existsSync(dir)) throw new UsageError(`${out} already exists (a release directory is never overwritten)`);
    if (!existsSync(image)) throw new UsageError(`image ${image} does not exist`);
    const rollout = values.rollout === undefined ? undefined : Math.round(numberOption('rollout', values.rollout, 100, 0.01, 100) * 100);
    const key = loadSigningKey(keyFile);
    const now = Math.floor(Date.now() / 1000);
    const expires = parseTime('expires', values.expires, now + 30 * 86400, now);
    if (expires <= now) throw new UsageError('--expires must be in the future');
    const groupKey = values.encrypt ? loadGroupKey(values['group-key'] as string) : undefined;

    const commitments = blockCommitments();
    const sender = await createFileSender({
      file: image,
      observe: commitments.observe,
      symbolSize: numberOption('symbol-size', values['symbol-size'], DEFAULT_SYMBOL_SIZE, 4, 65532),
      maxBlockSymbols: numberOption('block-symbols', values['block-symbols'], 8192, 1, 56403),
    });
    const manifest = signFileManifest(sender, commitments.blockHashes(), key, {
      product,
      sequence: BigInt(sequence),
      version: values.version ?? sequence,
      created: now,
      expires,
      ...(groupKey ? { groupKey, cipher } : {}),
      ...(values.digests ? { digests: true } : {}),
      ...(rollout !== undefined ? { rolloutBasisPoints: rollout } : {}),
    });

    const parent = dirname(dir);
    mkdirSync(parent, { recursive: true });
    // Built as a hidden sibling (the publisher skips dot-directories), then renamed into place.
    const tmp = mkdtempSync(join(parent, `.${basename(dir)}.partial-`));
    try {
      chmodSync(tmp, 0o755); // mkdtemp makes it 0700; the release itself is public data
      const img = join(tmp, 'image');
      let linked = false;
      if (!values.copy) {
        try {
          linkSync(image, img);
          linked = true;
        } catch {
          // another file system, or links not allowed: copy
        }
      }
      if (!linked) {
        try {
          copyFileSync(image, img, fsConstants.COPYFILE_FICLONE);
        } catch (err) {
          throw new StorageError(`cannot copy ${image}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
        }
      }
      writeNewFile(join(tmp, 'manifest'), manifest, 0o644);
      // What the publisher will read back: the same checks it makes (image size, canonical manifest).
      const r = loadReleaseDir(tmp);
      renameSync(tmp, dir);
      const summary = {
        dir,
        product,
        sequence,
        version: values.version ?? sequence,
        manifestId: toHex(r.manifestId),
        objectId: toHex(r.fields.objectId),
        size: r.fields.size,
        image: linked ? 'hard link' : 'copy',
        signer: toHex(key.keyId),
      };
      if (values.json) console.log(JSON.stringify({ type: 'release', ...summary }));
      else console.log(`release ${product} ${sequence} (${summary.version}), manifest id ${summary.manifestId.slice(0, 16)}, ${summary.size} bytes: ${dir}`);
      return 0;
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  },
};
