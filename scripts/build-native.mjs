#!/usr/bin/env node
// Builds the optional native part: src/net/native/udp_batch.c -> dist/src/net/native/udp_batch.node,
// batched sending (UDP GSO) and receiving (recvmmsg) for McastSocket. It needs a C compiler
// ($CC, cc or gcc) and Node's headers (node_api.h and uv.h, shipped with Node). Without them the
// build says so and succeeds: McastSocket then makes one system call per datagram, as node:dgram
// does. A compile error fails the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(root, 'src/net/native/udp_batch.c');
const OUT = join(root, 'dist/src/net/native/udp_batch.node');

function skip(reason) {
  console.log(`build-native: skipped (${reason}); McastSocket falls back to one system call per datagram`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`UDP GSO is Linux-only, this is ${process.platform}`);
const includes = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
const include = includes.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
if (!include) skip(`node_api.h and uv.h not found in ${includes.join(', ')}`);
const compilers = [process.env.CC, 'cc', 'gcc'].filter(Boolean);
const cc = compilers.find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (!cc) skip(`no C compiler (tried ${compilers.join(', ')}; Debian: apt-get install gcc)`);

mkdirSync(dirname(OUT), { recursive: true });
const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-I', include, '-o', OUT, SOURCE];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`build-native: ${cc} ${args.join(' ')} failed`);
  process.exit(1);
}
