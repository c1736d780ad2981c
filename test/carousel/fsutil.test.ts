import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { hashFile, hex, storageError, writeFileAtomicSync } from '../../src/fsutil/index.js';
import { StorageError } from '../../src/errors.js';
import { randomBytes } from './sim.js';

test('hashFile streams: equals one-shot BLAKE3 across 1 MiB read boundaries, and the published empty-input vector', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fsutil-'));
  try {
    const data = randomBytes(3 * 1024 * 1024 + 17, 31);
    writeFileSync(join(dir, 'a'), data);
    assert.equal(hex(await hashFile(join(dir, 'a'))), hex(blake3(data)));
    writeFileSync(join(dir, 'empty'), '');
    assert.equal(hex(await hashFile(join(dir, 'empty'))), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    await assert.rejects(hashFile(join(dir, 'missing')), (e: unknown) => e instanceof StorageError && /no such file/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomicSync replaces the file and leaves no temp file; failures are StorageErrors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fsutil-'));
  try {
    const p = join(dir, 'state');
    writeFileAtomicSync(p, new Uint8Array([1, 2, 3]));
    writeFileAtomicSync(p, new Uint8Array([4, 5]));
    assert.deepEqual([...readFileSync(p)], [4, 5]);
    assert.deepEqual(readdirSync(dir), ['state']);
    assert.throws(() => writeFileAtomicSync(join(dir, 'state', 'x'), new Uint8Array(1)), (e: unknown) => e instanceof StorageError && /not a directory/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('storageError maps errno to one readable line and marks a full disk', () => {
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const e = storageError(full, 'write', '/data/out.bin');
  assert.equal(e.message, 'cannot write /data/out.bin: no space left on the device');
  assert.equal(e.code, 'ERR_STORAGE_FULL');
  const denied = storageError(Object.assign(new Error('x'), { code: 'EACCES' }), 'write', 'o');
  assert.equal(denied.code, 'ERR_STORAGE');
  assert.equal(denied.message, 'cannot write o: permission denied');
});
