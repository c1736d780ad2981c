// Carrying a signed manifest (up to ~8.5 KB with 255 block hashes) in MANIFEST packets.
// Fragment body:
//   0   16  SHA-256 of the whole manifest, first 16 bytes (names the manifest being assembled)
//   16   4  total length (u32, <= MAX_MANIFEST)
//   20   4  offset of this fragment (u32)
//   24   .  fragment bytes
// Fragments are not trusted: the assembled manifest is checked against its digest and then
// verifyManifest checks its signature. Fragments of different manifests assemble in separate slots
// (at most `maxSlots`, least recently touched evicted), so a forged fragment stream cannot corrupt
// the genuine one, only compete for slots. The oldest slot is evicted first: the sender emits all
// fragments of a manifest back to back, so an injector would have to open `maxSlots` new slots
// between two consecutive genuine fragments to starve it.
import { createHash } from 'node:crypto';
import { DecodeError } from '../errors.js';
import { equalBytes, Reader, Writer } from './bytes.js';
import { MAX_MANIFEST } from './manifest.js';

const HEADER = 24;

export function fragmentManifest(manifest: Uint8Array, maxFragment = 1100): Uint8Array[] {
  if (manifest.length > MAX_MANIFEST) throw new DecodeError('manifest too large');
  if (maxFragment < 1) throw new DecodeError('fragment size must be positive');
  const digest = createHash('sha256').update(manifest).digest().subarray(0, 16);
  const out: Uint8Array[] = [];
  for (let off = 0; off < manifest.length; off += maxFragment) {
    const chunk = manifest.subarray(off, Math.min(manifest.length, off + maxFragment));
    out.push(new Writer().fixed(digest, 16).u32(manifest.length).u32(off).fixed(chunk, chunk.length).finish());
  }
  return out;
}

interface Slot {
  digest: Uint8Array;
  buf: Uint8Array;
  have: Uint8Array;
  missing: number;
}

export class ManifestAssembler {
  private readonly slots = new Map<string, Slot>();
  constructor(private readonly maxSlots = 16) {}

  /** Returns the complete manifest bytes when this fragment completes one, else null. */
  push(body: Uint8Array): Uint8Array | null {
    const r = new Reader(body, 'manifest fragment');
    const digest = r.fixed(16);
    const total = r.u32();
    const offset = r.u32();
    const chunk = r.fixed(r.remaining);
    if (total < 1 || total > MAX_MANIFEST || chunk.length === 0 || offset + chunk.length > total) {
      throw new DecodeError('manifest fragment: bad offset or length');
    }
    const id = `${Buffer.from(digest).toString('hex')}:${total}`;
    let slot = this.slots.get(id);
    if (!slot) {
      // Map iteration order is insertion order: the first key is the oldest slot.
      if (this.slots.size >= this.maxSlots) this.slots.delete(this.slots.keys().next().value as string);
      slot = { digest: digest.slice(), buf: new Uint8Array(total), have: new Uint8Array(total), missing: total };
      this.slots.set(id, slot);
    }
    for (let i = 0; i < chunk.length; i++) {
      if (slot.have[offset + i] === 0) {
        slot.have[offset + i] = 1;
        slot.buf[offset + i] = chunk[i] as number;
        slot.missing -= 1;
      }
    }
    if (slot.missing > 0) return null;
    this.slots.delete(id);
    const got = createHash('sha256').update(slot.buf).digest().subarray(0, 16);
    return equalBytes(got, slot.digest) ? slot.buf : null;
  }
}

export const FRAGMENT_HEADER_LENGTH = HEADER;
