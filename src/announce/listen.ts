// The thin driver around AnnounceFilter: join a product's announce channel on one interface and
// yield what the filter makes of each datagram. The socket is bound to the group itself, so it
// receives only this channel (docs/channels.md: a socket bound to [::]:port would also get every
// other group joined on that port in the namespace).
import type { Scope } from '../channel/naming.js';
import { McastSocket } from '../net/socket.js';
import { announceChannel } from './channels.js';
import type { AnnounceFilter, AnnounceResult } from './filter.js';

export interface ListenOptions {
  interface: string;
  product: string;
  filter: AnnounceFilter;
  scope?: Scope;
  ssm?: boolean;
  port?: number;
  /** Source address for an SSM announce channel. */
  source?: string;
  /** Clock for the filter, ms (default Date.now). */
  now?: () => number;
  /** Called once the group is joined. */
  onReady?: (channel: { group: string; port: number }) => void;
  signal?: AbortSignal;
}

export type ListenResult = AnnounceResult & { from: string };

/** Yields one result per datagram until `signal` aborts (or the caller stops iterating). */
export async function* listenForAnnouncements(opts: ListenOptions): AsyncGenerator<ListenResult> {
  const ch = announceChannel(opts.product, {
    ...(opts.scope ? { scope: opts.scope } : {}),
    ...(opts.ssm ? { ssm: true } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  });
  const now = opts.now ?? Date.now;
  const sock = await McastSocket.open({ interface: opts.interface, port: ch.port, bindAddress: ch.group, ...(opts.signal ? { signal: opts.signal } : {}) });
  try {
    sock.join(ch.group, opts.source);
    opts.onReady?.({ group: ch.group, port: ch.port });
    for await (const d of sock.messages(opts.signal)) yield { ...opts.filter.push(d.data, now()), from: d.from };
  } finally {
    await sock.close();
  }
}
