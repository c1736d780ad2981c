import { forgetSymbols, type BlockState } from './held.js';
import type { StoreResume } from './store.js';
import type { ReceiverStats } from './types.js';

/**
 * Rebuilds the blocks' state from what a store still holds of the object after a restart
 * (docs/protocol.md "Spool": resume): blocks found complete are not decoded again, the others
 * hold the checked source symbols at their place and the kept symbols. Returns the number of
 * complete blocks; the caller schedules decodes for blocks that hold enough symbols.
 */
export function resumeBlocks(blocks: readonly BlockState[], stored: StoreResume, stats: ReceiverStats): number {
  stats.corruptRecords += stored.corrupt;
  let done = 0;
  for (const b of blocks) {
    const s = stored.blocks[b.sbn];
    if (!s) continue;
    if (s.done) {
      b.done = true;
      forgetSymbols(b);
      done += 1;
      stats.resumedBlocks += 1;
      stats.used += b.k;
      continue;
    }
    for (const esi of s.placed) b.held.addPlaced(esi);
    for (let i = 0; i < s.keptEsis.length; i++) {
      const esi = s.keptEsis[i] as number;
      if (b.held.has(esi)) continue;
      b.held.add(esi);
      b.keptEsi.push(esi);
      b.keptRef.push(s.keptRefs[i] as number);
    }
    b.nextAttempt = b.k;
  }
  return done;
}
