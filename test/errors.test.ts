import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortError, ErrorCode, IotupdError, TimeoutError, UsageError, abortError } from '../src/errors.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

test('every error code written in src/ is listed in ErrorCode', () => {
  const listed = new Set<string>(Object.values(ErrorCode));
  const files = sources(SRC);
  assert.ok(files.length > 50, `found only ${files.length} source files under ${SRC}`);
  const used = new Set<string>();
  for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) used.add(m[1] as string);
  assert.ok(used.size > 20, `found only ${used.size} codes`);
  const missing = [...used].filter((c) => !listed.has(c));
  assert.deepEqual(missing, [], `codes thrown but not in ErrorCode: ${missing.join(', ')}`);
});

test('abortError: one AbortError for any reason, TimeoutError for timeouts', () => {
  const ac = new AbortController();
  ac.abort();
  const plain = abortError(ac.signal);
  assert.ok(plain instanceof AbortError && plain instanceof IotupdError);
  assert.equal(plain.code, ErrorCode.ABORTED);
  assert.equal(plain.message, 'aborted');

  const ac2 = new AbortController();
  const reason = new Error('interrupted by SIGINT');
  ac2.abort(reason);
  const e2 = abortError(ac2.signal);
  assert.ok(e2 instanceof AbortError);
  assert.equal(e2.message, 'interrupted by SIGINT');
  assert.equal(e2.cause, reason);

  const t = new TimeoutError('no object within 5 s');
  const ac3 = new AbortController();
  ac3.abort(t);
  assert.equal(abortError(ac3.signal), t);

  const dom = AbortSignal.abort(new DOMException('signal timed out', 'TimeoutError'));
  const e4 = abortError(dom);
  assert.ok(e4 instanceof TimeoutError);
  assert.equal(e4.code, ErrorCode.TIMEOUT);
  assert.ok(!(e4 instanceof UsageError));
});
