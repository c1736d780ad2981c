#!/usr/bin/env node
/**
 * Our side of the Librecast interop tests, run inside a lab host by the tests (not a test file):
 *
 *   node lc-node.js recv IFNAME CHANNEL msg|raw COUNT TIMEOUT_MS [SIDEBAND]
 *   node lc-node.js send IFNAME CHANNEL msg|raw COUNT [SIDEBAND]
 *   node lc-node.js ping IFNAME CHANNEL msg COUNT TIMEOUT_MS
 *       joins CHANNEL, sends COUNT PING messages "ping-<i>" (seq from the channel clock) and
 *       prints every message that comes back (Librecast's listener answers PING with PONG)
 *
 * Same arguments and JSON lines as test/librecast/c/lc-recv.c and lc-send.c, built on
 * src/librecast (Context, Socket, Channel). send mode uses sendMsg with opcode i % 7, timestamp
 * 2000000000000000000 + i and rnd 0x0102030405060708 * i (mod 2^64), or raw "ts-raw-<i>".
 */
import { Context } from '../../src/librecast/index.js';
import type { Opcode } from '../../src/wire/librecast-message.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const out = (o: unknown): void => {
  process.stdout.write(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
};

async function main(argv: string[]): Promise<number> {
  const [mode, ifname, name, kind, countText, ...rest] = argv;
  if ((mode !== 'recv' && mode !== 'send' && mode !== 'ping') || !ifname || name === undefined || (kind !== 'msg' && kind !== 'raw') || !countText) {
    process.stderr.write('usage: lc-node recv|send IFNAME CHANNEL msg|raw COUNT [TIMEOUT_MS] [SIDEBAND]\n');
    return 2;
  }
  const count = Number(countText);
  const ctx = new Context();
  try {
    const sock = await ctx.socket({ interface: ifname });
    if (mode === 'ping') {
      const timeoutMs = Number(rest[0] ?? 5000);
      const chan = ctx.channel(name);
      await sock.join(chan);
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), timeoutMs);
      const replies = (async () => {
        let got = 0;
        for await (const m of sock.messages(ac.signal)) {
          out({ event: 'msg', seq: m.seq, op: m.opcode, timestamp: m.timestamp, rnd: m.rnd, data: hex(m.payload), from: m.from, clockAfter: chan.clock.value });
          if (++got >= count) break;
        }
        return got;
      })();
      for (let i = 1; i <= count; i++) {
        const sent = await chan.sendMsg(new TextEncoder().encode(`ping-${i}`), 1, { timestamp: 3_000_000_000_000_000_000n + BigInt(i) });
        out({ event: 'sent', i, seq: sent.seq, rnd: sent.rnd });
        await new Promise((r) => setTimeout(r, 50));
      }
      const got = await replies;
      clearTimeout(timer);
      out({ event: 'done', received: got });
    } else if (mode === 'recv') {
      const timeoutMs = Number(rest[0] ?? 5000);
      let chan = ctx.channel(name);
      if (rest[1] !== undefined) chan = chan.sideband(BigInt(rest[1]));
      await sock.join(chan);
      out({ event: 'ready', group: chan.group });
      let got = 0;
      const ac = new AbortController();
      let idle = setTimeout(() => ac.abort(), timeoutMs);
      const rearm = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => ac.abort(), timeoutMs);
      };
      if (kind === 'msg') {
        for await (const m of sock.messages(ac.signal)) {
          rearm();
          out({ event: 'msg', bytes: m.bytes, timestamp: m.timestamp, seq: m.seq, rnd: m.rnd, op: m.opcode, len: m.payload.length, data: hex(m.payload), group: m.channel.group });
          if (++got >= count) break;
        }
      } else {
        for await (const d of sock.datagrams(ac.signal)) {
          rearm();
          out({ event: 'raw', bytes: d.data.length, data: hex(d.data), group: d.channel.group });
          if (++got >= count) break;
        }
      }
      clearTimeout(idle);
      out({ event: 'done', received: got, decodeDrops: sock.stats.decodeDrops, clock: chan.clock.value });
    } else {
      let chan = ctx.channel(name);
      if (rest[0] !== undefined) chan = chan.sideband(BigInt(rest[0]));
      chan.bind(sock);
      for (let i = 1; i <= count; i++) {
        if (kind === 'msg') {
          const payload = new TextEncoder().encode(`ts-msg-${i}`);
          const rnd = (0x0102030405060708n * BigInt(i)) & 0xffff_ffff_ffff_ffffn;
          await chan.sendMsg(payload, (i % 7) as Opcode, { timestamp: 2_000_000_000_000_000_000n + BigInt(i), rnd });
          out({ event: 'sent', i, bytes: payload.length + 33, group: chan.group });
        } else {
          const payload = new TextEncoder().encode(`ts-raw-${i}`);
          await chan.send(payload);
          out({ event: 'sent', i, bytes: payload.length, group: chan.group });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      out({ event: 'done' });
    }
  } finally {
    await ctx.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`lc-node: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
