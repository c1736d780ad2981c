// A device-side listener for the publisher lab test (not a test file itself): joins a product's
// announce channel on a real interface, feeds every datagram to the AnnounceFilter, and prints one
// JSON line per result. `send` mode sends given bytes to a group (to inject forged beacons).
//   node announce-listener.js listen --interface IF --trust ROOT.pub --product P [--installed N]
//   node announce-listener.js send --interface IF --group G --port N --hex BYTES [--count N]
import { parseArgs } from 'node:util';
import { AnnounceFilter } from '../../src/announce/filter.js';
import { listenForAnnouncements } from '../../src/announce/listen.js';
import { toHex } from '../../src/crypto/bytes.js';
import { loadPublicKey } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { McastSocket } from '../../src/net/socket.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    interface: { type: 'string' },
    trust: { type: 'string' },
    product: { type: 'string' },
    installed: { type: 'string' },
    group: { type: 'string' },
    port: { type: 'string' },
    hex: { type: 'string' },
    count: { type: 'string' },
  },
});
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? toHex(v) : v)) + '\n');
};

if (positionals[0] === 'send') {
  const sock = await McastSocket.open({ interface: values.interface as string, port: 0 });
  const bytes = new Uint8Array(Buffer.from(values.hex as string, 'hex'));
  const n = Number(values.count ?? '1');
  for (let i = 0; i < n; i++) await sock.send(bytes, values.group as string, Number(values.port ?? '4242'));
  await sock.close();
  out({ event: 'done', sent: n });
} else {
  const product = values.product as string;
  const filter = new AnnounceFilter({
    trust: new TrustStore([loadPublicKey(values.trust as string)]),
    product,
    installedSequence: BigInt(values.installed ?? '0'),
  });
  const ac = new AbortController();
  const stats = setInterval(() => out({ event: 'stats', ...filter.stats }), 250);
  process.on('SIGTERM', () => ac.abort());
  for await (const r of listenForAnnouncements({ interface: values.interface as string, product, filter, signal: ac.signal, onReady: (ch) => out({ event: 'ready', ...ch }) })) {
    out({ event: r.type, at: Date.now(), ...r });
  }
  clearInterval(stats);
  out({ event: 'stats', final: true, ...filter.stats });
}
