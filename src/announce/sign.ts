// Signing beacons with a key of the manifest hierarchy (src/crypto/keys.ts, certs.ts): the same
// signer and delegation chain that sign a release's manifest also sign its beacons, under the
// beacon's own context string (src/wire/beacon.ts), so neither signature can stand for the other.
import { ed25519Sign, type SigningKey } from '../crypto/keys.js';
import { encode, setSignature, signingInput, SIGNATURE_LENGTH, type AnnounceBeacon, type Beacon, type HaltBeacon, type StateBeacon } from '../wire/beacon.js';

type Unsigned<T> = Omit<T, 'signature' | 'signerKeyId' | 'chain'>;
/** A beacon's content before the signer fills in its key id, chain and signature. */
export type BeaconContent = Unsigned<AnnounceBeacon> | Unsigned<HaltBeacon> | Unsigned<StateBeacon>;

/** Encode and sign. The chain is the key file's (root rotations, then the delegation). */
export function signBeacon(content: BeaconContent, key: SigningKey, chain: Uint8Array[] = key.chain): Uint8Array {
  const beacon = { ...content, signerKeyId: key.keyId, chain, signature: new Uint8Array(SIGNATURE_LENGTH) } as Beacon;
  const bytes = encode(beacon);
  setSignature(bytes, ed25519Sign(key.privateKey, signingInput(bytes)));
  return bytes;
}
