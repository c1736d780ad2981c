// Child process of bench:transfer's floor rows: the least a Node program can do per datagram.
//   floor-peer.js send IF GROUP COUNT SIZE   connected McastSocket, trySend as fast as the kernel
//                                             takes them; prints {"sent", "ms", "cpuSeconds"}
//   floor-peer.js send IF GROUP COUNT SIZE MBIT
//                                             paced like iotupd's sender (a token bucket of 4 ms
//                                             at MBIT, IPv6+UDP headers counted) and sent as
//                                             iotupd sends, in UDP GSO runs of up to 64 (sendBurst)
//   floor-peer.js recv IF GROUP NEED [batch] counts datagrams; exits 0 after NEED of them, or
//                                             prints {"received"} and exits 1 on SIGTERM; with
//                                             "batch" reads them as iotupd does (recvmmsg)
// No coding, no disk, no hashing: what is left is the socket layer, the kernel and the lab's links.
import { setTimeout as sleep } from 'node:timers/promises';
import { McastSocket, DEFAULT_PORT, GSO_MAX_SEGMENTS } from '../src/net/index.js';
import { TokenBucket } from '../src/carousel/index.js';
import { IPV6_UDP_OVERHEAD } from '../src/wire/fountain.js';

const [mode, iface, group, countArg, sizeArg, fifth] = process.argv.slice(2);
if ((mode !== 'send' && mode !== 'recv') || !iface || !group || !countArg) {
  console.error('usage: floor-peer.js send IF GROUP COUNT SIZE [MBIT] | recv IF GROUP NEED [batch]');
  process.exit(2);
}
const count = Number(countArg);

if (mode === 'recv') {
  const sock = await McastSocket.open({ interface: iface, port: DEFAULT_PORT, bindAddress: group });
  sock.join(group);
  let received = 0;
  const one = (): void => {
    if (++received === count) {
      console.log(JSON.stringify({ received, recvBatch: sock.recvBatch.enabled }));
      process.exit(0);
    }
  };
  if (sizeArg === 'batch') sock.onDatagrams(one);
  else sock.onMessage(one);
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ received }));
    process.exit(1);
  });
  console.log(JSON.stringify({ ready: true }));
} else if (fifth !== undefined) {
  // Paced and batched, as src/transfer/driver.ts sendFile sends.
  const size = Number(sizeArg ?? 1232);
  const sock = await McastSocket.open({ interface: iface, port: 0 });
  await sock.connect(group, DEFAULT_PORT);
  const wire = size + IPV6_UDP_OVERHEAD;
  const bitsPerSecond = Number(fifth) * 1e6;
  const t0 = performance.now();
  const bucket = new TokenBucket(bitsPerSecond, Math.max(8 * wire, (bitsPerSecond / 8) * 0.004), t0);
  const burst: Uint8Array[] = [];
  let sent = 0;
  const flush = async (): Promise<void> => {
    let at = 0;
    while (at < burst.length) {
      const k = sock.sendBurst(burst, at, burst.length, group, DEFAULT_PORT);
      if (k > 0) at += k;
      else await sock.drain();
    }
    sent += burst.length;
    burst.length = 0;
    await new Promise<void>((r) => setImmediate(r));
  };
  while (sent + burst.length < count) {
    const wait = bucket.take(wire, performance.now());
    if (wait === 0) {
      // A fresh buffer per datagram, as the fountain sender builds each packet.
      burst.push(new Uint8Array(size).fill(7));
      if (burst.length >= GSO_MAX_SEGMENTS) await flush();
      continue;
    }
    if (burst.length > 0) await flush();
    await sleep(Math.max(1, Math.min(wait, 1000)));
  }
  await flush();
  await sock.drain();
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ sent, ms: performance.now() - t0, cpuSeconds: (cpu.user + cpu.system) / 1e6, gso: sock.gso.enabled }));
  await sock.close();
} else {
  const size = Number(sizeArg ?? 1232);
  const sock = await McastSocket.open({ interface: iface, port: 0 });
  await sock.connect(group, DEFAULT_PORT);
  const payload = new Uint8Array(size).fill(7);
  const t0 = performance.now();
  let sent = 0;
  while (sent < count) {
    for (let burst = 0; burst < 64 && sent < count; burst++) {
      if (sock.trySend(payload, group, DEFAULT_PORT)) sent++;
      else await sock.drain();
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  await sock.drain();
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ sent, ms: performance.now() - t0, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
  await sock.close();
}
