// GF(256) arithmetic of RFC 6330 section 5.7: polynomial x^8+x^4+x^3+x^2+1 (0x11d), generator alpha = 2.

/** OCT_EXP[i] = alpha^i for i in 0..509 (doubled so that OCT_EXP[log a + log b] needs no reduction). */
export const OCT_EXP = new Uint8Array(510);
/** OCT_LOG[a] for a in 1..255; OCT_LOG[0] is undefined in the RFC and stored as 0 here (never read). */
export const OCT_LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    OCT_EXP[i] = x;
    OCT_EXP[i + 255] = x;
    OCT_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
}

/** Full 256x256 product table: MUL[a * 256 + b] = a * b. */
export const MUL = new Uint8Array(65536);
for (let a = 1; a < 256; a++) {
  for (let b = 1; b < 256; b++) MUL[a * 256 + b] = OCT_EXP[OCT_LOG[a]! + OCT_LOG[b]!]!;
}

export function gfMul(a: number, b: number): number {
  return MUL[(a << 8) | b]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('GF(256) inverse of 0');
  return OCT_EXP[255 - OCT_LOG[a]!]!;
}

/** alpha^i for any integer i (reduced mod 255), as used by GAMMA and MT in 5.3.3.3. */
export function alphaPow(i: number): number {
  return OCT_EXP[((i % 255) + 255) % 255]!;
}
