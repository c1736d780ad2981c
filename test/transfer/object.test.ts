import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '../../src/transfer/object.js';
import { HashAlgorithm } from '../../src/wire/fountain.js';
import { StorageError } from '../../src/errors.js';

test('hashFile: SHA-256 of the file read ahead in 1 MiB chunks, each chunk observed once, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-hash-'));
  try {
    const file = join(dir, 'image.bin');
    const bytes = randomBytes(2.5 * 2 ** 20 + 123); // three chunks, the last one short
    writeFileSync(file, bytes);
    const seen: Buffer[] = [];
    const digest = await hashFile(HashAlgorithm.SHA256, file, undefined, (c) => seen.push(Buffer.from(c)));
    assert.equal(Buffer.from(digest).toString('hex'), createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(seen.map((c) => c.length), [2 ** 20, 2 ** 20, 0.5 * 2 ** 20 + 123]);
    assert.ok(Buffer.concat(seen).equals(bytes));
    // A prefix when told its length; a file shorter than the length is an error, not a short hash.
    const prefix = await hashFile(HashAlgorithm.SHA256, file, 1000);
    assert.equal(Buffer.from(prefix).toString('hex'), createHash('sha256').update(bytes.subarray(0, 1000)).digest('hex'));
    await assert.rejects(hashFile(HashAlgorithm.SHA256, file, bytes.length + 1), (e: unknown) => e instanceof StorageError && /shorter than/.test(e.message));
    await assert.rejects(hashFile(HashAlgorithm.SHA256, join(dir, 'missing.bin')), (e: unknown) => e instanceof StorageError && /cannot read/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
