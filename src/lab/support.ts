import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export type LabSupport = { ok: true; mode: 'root' | 'userns' } | { ok: false; reason: string; userns: boolean };

/** Set in the environment of a process re-run by reexecInUserns(). */
export const USERNS_ENV = 'IOTUPD_LAB_USERNS';

let cached: LabSupport | undefined;

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

/** True when `unshare -rnm` works for this user (unprivileged user namespaces enabled). */
export function usernsAvailable(): boolean {
  return has('unshare', ['-rnm', '--propagation', 'private', 'true']);
}

/**
 * Can this process build a lab? Root (real, or root of a private user namespace made by
 * reexecInUserns) with working `ip netns`: ok. Otherwise the reason, and whether
 * reexecInUserns() would help. Probes once (creates and deletes one namespace) and caches.
 */
export function labSupport(): LabSupport {
  if (cached) return cached;
  cached = probe();
  return cached;
}

function probe(): LabSupport {
  if (process.platform !== 'linux') return { ok: false, reason: 'the network lab needs Linux network namespaces', userns: false };
  if (!has('ip', ['-V'])) return { ok: false, reason: "iproute2 ('ip') is not installed", userns: false };
  const uid = process.getuid?.() ?? -1;
  const mode = process.env[USERNS_ENV] === '1' ? 'userns' : 'root';
  if (uid !== 0) {
    const userns = usernsAvailable();
    return {
      ok: false,
      userns,
      reason: userns
        ? 'not root: run as root, or inside `unshare -rnm --propagation private` with a tmpfs on /run (reexecInUserns() does this)'
        : 'not root, and unprivileged user namespaces are disabled here (kernel.unprivileged_userns_clone / apparmor_restrict_unprivileged_userns): run as root',
    };
  }
  if (!has('nft', ['--version'])) return { ok: false, reason: "nftables ('nft') is not installed (apt-get install nftables)", userns: false };
  const probeNs = `iuprobe${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', probeNs], { encoding: 'utf8', timeout: 5000 });
  spawnSync('ip', ['netns', 'del', probeNs], { stdio: 'ignore', timeout: 5000 });
  if (add.status !== 0) {
    return { ok: false, userns: false, reason: `cannot create a network namespace: ${(add.stderr || '').trim() || `ip exited ${String(add.status)}`}` };
  }
  return { ok: true, mode };
}

/**
 * Re-run this process inside a private user+network+mount namespace (`unshare -rnm
 * --propagation private`, tmpfs on /run so `ip netns` can keep its files) and exit with its
 * status. Returns only when that is not needed (already root / already re-run) or not possible.
 */
export function reexecInUserns(argv: string[] = process.argv.slice(1)): void {
  if ((process.getuid?.() ?? 0) === 0 || process.env[USERNS_ENV] === '1') return;
  if (!usernsAvailable()) return;
  const r = spawnSync(
    'unshare',
    ['-rnm', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /run && exec "$@"', 'sh', process.execPath, ...process.execArgv, ...argv],
    { stdio: 'inherit', env: { ...process.env, [USERNS_ENV]: '1' } },
  );
  process.exit(r.status ?? 1);
}
