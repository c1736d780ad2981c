// A program written against the public API exactly as the README shows it: `node peer.js
// (send|recv) JSON-OPTIONS`. It prints each event as a JSON line, then the outcome; the lab test
// runs it on lab hosts.
import { AbortError, loadSigningKey, receive, send } from '../../src/index.js';

const [role, json] = process.argv.slice(2);
const o = JSON.parse(json ?? '{}') as Record<string, string | number>;
const print = (x: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}\n`);
};
const ac = new AbortController();
process.on('SIGTERM', () => ac.abort());
if (o.abortAfterMs !== undefined) setTimeout(() => ac.abort(), Number(o.abortAfterMs));

if (role === 'recv') {
  const rx = receive({
    channel: String(o.channel),
    interface: String(o.interface),
    out: String(o.out),
    security: { trust: [String(o.trust)], stateDir: String(o.state), product: String(o.product) },
    signal: ac.signal,
  });
  rx.on('listening', (group) => print({ event: 'listening', group }));
  rx.on('manifest', (m) => print({ event: 'manifest', version: m.version, sequence: m.sequence }));
  rx.on('object', (info) => print({ event: 'object', size: info.size }));
  rx.on('block', (sbn) => print({ event: 'block', sbn }));
  try {
    const { manifest, path } = await rx.done;
    print({ event: 'done', path, sequence: manifest?.sequence, version: manifest?.version });
  } catch (err) {
    print({ event: 'rejected', name: (err as Error).name, code: (err as { code?: string }).code, abort: err instanceof AbortError });
  }
} else {
  const tx = send({
    file: String(o.file),
    channel: String(o.channel),
    interface: String(o.interface),
    rateBps: Number(o.rateBps),
    security: { signingKey: loadSigningKey(String(o.key)), product: String(o.product), sequence: BigInt(o.sequence as number), version: String(o.version) },
    signal: ac.signal,
  });
  tx.on('start', (s) => print({ event: 'start', blocks: s.blocks, group: s.group }));
  tx.on('progress', (s) => print({ event: 'progress', symbols: s.symbols }));
  try {
    await tx.done;
    print({ event: 'done' });
  } catch (err) {
    print({ event: 'rejected', name: (err as Error).name, code: (err as { code?: string }).code, abort: err instanceof AbortError, symbols: tx.stats?.symbols ?? 0 });
  }
}
