import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Progress, formatBytes } from '../../src/cli/progress.js';

class Sink extends Writable {
  text = '';
  isTTY: boolean;
  columns = 80;
  constructor(tty: boolean) {
    super();
    this.isTTY = tty;
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

test('JSON lines when stdout is not a terminal: throttled progress, events, one final stats line', () => {
  const out = new Sink(false);
  const err = new Sink(false);
  let now = 0;
  const p = new Progress({ stdout: out, stderr: err, label: 'recv', now: () => now });
  assert.equal(p.json, true);
  p.update({ done: 10, total: 100, detail: { chunks: 1 } });
  now = 500;
  p.update({ done: 20, total: 100 }); // within the second: not printed
  now = 1000;
  p.update({ done: 30, total: 100 });
  p.event('resume', 'resuming', { chunks: 3, type: 'must-not-override' });
  now = 1500;
  p.finish({ result: 'ok', frames: 7 }, 'done', { done: 100, total: 100 });
  p.update({ done: 1, total: 1 }); // after finish: ignored
  const lines = out.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => [l.type, l.done ?? l.event ?? l.result]),
    [
      ['progress', 10],
      ['progress', 30],
      ['event', 'resume'],
      ['progress', 100],
      ['stats', 'ok'],
    ],
  );
  assert.deepEqual(lines[0], { type: 'progress', t: 0, label: 'recv', done: 10, total: 100, percent: 10, chunks: 1 });
  assert.equal(lines[2]!.chunks, 3);
  assert.equal(lines[4]!.t, 1.5);
  assert.equal(err.text, '');
});

test('a bar on a terminal: redrawn in place on stderr, events above it, final line', () => {
  const out = new Sink(true);
  const err = new Sink(true);
  let now = 0;
  const p = new Progress({ stdout: out, stderr: err, label: 'recv', now: () => now });
  assert.equal(p.json, false);
  p.update({ done: 512 * 1024, total: 1024 * 1024, unit: 'bytes', text: 'loss 1.0 %' });
  assert.ok(err.text.startsWith('\r\u001b[K'), 'redrawn in place');
  assert.match(err.text.slice(4), /^recv \[#+\.+\] {2}50\.0% 512\.0 KiB\/1\.0 MiB loss 1\.0 %$/);
  now = 50;
  p.update({ done: 600 * 1024, total: 1024 * 1024, unit: 'bytes' }); // under 100 ms: not drawn
  assert.equal(err.text.split('\r\x1b[K').length, 2);
  p.event('file', 'receiving 1.0 MiB');
  assert.match(err.text, /recv: receiving 1\.0 MiB\n/);
  p.finish({ result: 'ok' }, 'complete', { done: 1024 * 1024, total: 1024 * 1024, unit: 'bytes' });
  assert.match(err.text, /100\.0% 1\.0 MiB\/1\.0 MiB\nrecv: complete\n$/);
  assert.equal(out.text, '', 'nothing on stdout in bar mode');
  assert.equal(formatBytes(1536), '1.5 KiB');
});
