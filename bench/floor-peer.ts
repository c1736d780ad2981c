// Child process of bench:transfer's floor row: the least a Node program can do per datagram.
//   floor-peer.js send IF GROUP COUNT SIZE   connected McastSocket, trySend as fast as the kernel
//                                             takes them; prints {"sent", "ms", "cpuSeconds"}
//   floor-peer.js recv IF GROUP NEED         counts datagrams; exits 0 after NEED of them, or
//                                             prints {"received"} and exits 1 on SIGTERM
// No coding, no disk, no hashing: what is left is node:dgram, the kernel and the lab's links.
import { McastSocket, DEFAULT_PORT } from '../src/net/index.js';

const [mode, iface, group, countArg, sizeArg] = process.argv.slice(2);
if ((mode !== 'send' && mode !== 'recv') || !iface || !group || !countArg) {
  console.error('usage: floor-peer.js send IF GROUP COUNT SIZE | recv IF GROUP NEED');
  process.exit(2);
}
const count = Number(countArg);

if (mode === 'recv') {
  const sock = await McastSocket.open({ interface: iface, port: DEFAULT_PORT, bindAddress: group });
  sock.join(group);
  let received = 0;
  sock.onMessage(() => {
    if (++received === count) {
      console.log(JSON.stringify({ received }));
      process.exit(0);
    }
  });
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ received }));
    process.exit(1);
  });
  console.log(JSON.stringify({ ready: true }));
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
