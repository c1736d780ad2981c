// What a receiver does about its memory: scavenges on its own schedule, a bound on V8's young
// generation and on glibc's malloc arenas, both of which Node and glibc otherwise only take at
// start-up (docs/protocol.md, "Memory").
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nativeAddon, nativeUnavailableReason } from '../net/native.js';

/**
 * A minor (young-generation) garbage collection, when this Node allows exposing it. Every
 * datagram node:dgram delivers is a fresh Buffer whose bytes live outside the JS heap while its
 * wrapper is tiny, so the young generation fills slowly and tens of MB of dead datagrams pile up
 * before V8 collects them. Scavenging every few thousand datagrams keeps a receiver's peak memory
 * near its working set. A scavenge of a small young generation costs well under a millisecond.
 */
export function exposedGc(): ((opts?: { type: string }) => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as ((opts?: { type: string }) => void) | undefined;
    return typeof gc === 'function' ? gc : undefined;
  } catch {
    return undefined;
  }
}

/** The young generation's size now (V8's new space: both semi-spaces), bytes. */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Holds V8's young generation at semi-spaces of at most `semiSpaceMiB` (a power of two) from
 * inside the process, as `node --max-semi-space-size` does from the command line: that flag is
 * read only when the heap is set up. V8 grows the young generation by the factor
 * --semi-space-growth-factor, a flag it reads at each growth. The returned function sets it to 2
 * only while a doubling stays within the cap, and to 1 otherwise, so a growth can reach the cap
 * and not pass it. Node's young generation starts at 1 MiB and goes to 2 MiB even with a factor
 * of 1 (Node 20). V8 may shrink it later; it then stays at most 2 MiB.
 * Call it often (about 12 µs a call): two growths between two calls would pass the cap; the
 * receiver calls it every 1024 datagrams and after each decode. `peakBytes` is the largest young
 * generation it has seen.
 *
 * This relies on V8 growing the young generation only by that factor, as V8 11 (Node 20) does.
 * V8 13 (Node 24) grows it one page at a time when the factor is 1, so the cap does not hold
 * there. Whether it held is measured, not assumed: `status` is 'on' while the young generation
 * has stayed within the cap, and once it has grown past it, a sentence saying so and why.
 */
export function youngGenerationCap(semiSpaceMiB: number): { check: () => void; readonly peakBytes: number; readonly status: string } {
  const capBytes = 2 * semiSpaceMiB * 1024 * 1024;
  let factor = 0;
  let peakBytes = 0;
  const check = (): void => {
    const now = youngGenerationBytes();
    if (now > peakBytes) peakBytes = now;
    // Below 2 MiB, V8 grows without a factor (see above): a factor of 2 there could double twice.
    // Once the cap was reached, never again: when V8 shrinks it from 4 to 2 MiB, a growth with a
    // factor of 2 can go to 8 MiB (Node 20; docs/decisions/0007-receiver-memory-bounds.md).
    const want = peakBytes < capBytes && now >= 2 * 1024 * 1024 && 2 * now <= capBytes ? 2 : 1;
    if (want === factor) return;
    setFlagsFromString(`--semi-space-growth-factor=${want}`);
    factor = want;
  };
  check();
  return {
    check,
    get peakBytes() {
      return peakBytes;
    },
    get status() {
      if (peakBytes <= capBytes) return 'on';
      return `not held: V8 ${process.versions.v8} grew the young generation to ${(peakBytes / 2 ** 20).toFixed(2)} MiB, past the cap of ${capBytes / 2 ** 20} MiB (it does not grow by --semi-space-growth-factor alone)`;
    },
  };
}

/**
 * Holds glibc to `n` malloc arenas from now on, as MALLOC_ARENA_MAX=n in the environment would
 * have from the start (mallopt through the native addon). glibc gives each thread that allocates
 * an arena of its own, up to eight per core, and memory freed in one is not reused by another: V8's
 * helper threads (compilation, GC) and libuv's thread pool leave pages resident, which pushes a
 * receiver's peak past its target (docs/decisions/0007-receiver-memory-bounds.md). Returns 'on',
 * or why not.
 */
export function limitMallocArenas(n: number): string {
  const addon = nativeAddon();
  if (!addon) return nativeUnavailableReason();
  return addon.mallocArenaMax(n) === 1 ? 'on' : 'not glibc';
}

/**
 * Process-wide memory settings for a process whose main job is receiving: a bound on V8's young
 * generation, a bound on glibc's malloc arenas and scheduled scavenges. They change the whole
 * process (V8 flags, mallopt), so no library call applies them by itself: a program opts in once
 * with tuneReceiverMemory() and passes the result to its receivers (`memory` option). The CLI's
 * `iotupd recv` and the device agent do.
 */
export interface ReceiverMemoryTuning {
  /** Called every few thousand datagrams and after each block decode. */
  check(): void;
  /** A young-generation collection, when this Node lets the process expose one. */
  readonly scavenge: (() => void) | undefined;
  /** Scavenge every this many datagrams. */
  readonly scavengeEvery: number;
  /** The largest young generation seen (both semi-spaces, MiB); 0 when not bounded. */
  readonly youngGenerationMiB: number;
  /** 'on' while the young-generation cap held, 'off' when not asked for, else why it did not hold. */
  readonly youngGenerationCap: string;
  /** 'on' when glibc's malloc arenas are bounded, else why not. */
  readonly mallocArenaLimit: string;
}

export interface ReceiverMemoryOptions {
  /** Semi-space cap in MiB (youngGenerationCap). Default DEFAULT_MAX_SEMI_SPACE_MIB; 0 leaves V8's. */
  maxSemiSpaceMiB?: number;
  /** malloc arenas (limitMallocArenas). Default 1; 0 leaves glibc's. */
  mallocArenas?: number;
  /** Scavenge every this many datagrams (default 4096, 512 with lowMemory); 0: never. */
  scavengeEvery?: number;
  lowMemory?: boolean;
}

/**
 * The receiver's young-generation bound (semi-spaces, MiB). Under V8's own bound (16 MiB) the dead
 * datagram buffers and decode temporaries of a large transfer fill up to 32 MiB of young
 * generation; 2 MiB keeps the receiver's peak lower at the same speed. 1 MiB is too small: a
 * block decode's working set would be promoted to the old generation
 * (docs/decisions/0007-receiver-memory-bounds.md).
 */
export const DEFAULT_MAX_SEMI_SPACE_MIB = 2;

/** Apply the process-wide receiver memory settings (see ReceiverMemoryTuning). */
export function tuneReceiverMemory(opts: ReceiverMemoryOptions = {}): ReceiverMemoryTuning {
  const every = opts.scavengeEvery ?? (opts.lowMemory ? 512 : 4096);
  const gc = every === 0 ? undefined : exposedGc();
  const young = opts.maxSemiSpaceMiB === 0 ? undefined : youngGenerationCap(opts.maxSemiSpaceMiB ?? DEFAULT_MAX_SEMI_SPACE_MIB);
  const mallocArenaLimit = opts.mallocArenas === 0 ? 'off' : limitMallocArenas(opts.mallocArenas ?? 1);
  return {
    check: () => young?.check(),
    scavenge: gc ? () => gc({ type: 'minor' }) : undefined,
    scavengeEvery: every,
    get youngGenerationMiB() {
      return young ? young.peakBytes / 2 ** 20 : 0;
    },
    get youngGenerationCap() {
      return young ? young.status : 'off';
    },
    mallocArenaLimit,
  };
}
