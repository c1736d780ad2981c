// The security options of 'iotupd send' and 'iotupd recv' (fountain format), apart from their
// implementation (secure.ts): the CLI loads the cryptography only when one of them is given.

export const SECURE_SEND_OPTIONS = {
  key: { type: 'string' },
  manifest: { type: 'string' },
  'group-key': { type: 'string' },
  encrypt: { type: 'boolean' },
  cipher: { type: 'string' },
  mac: { type: 'string' },
  digests: { type: 'boolean' },
  product: { type: 'string' },
  sequence: { type: 'string' },
  version: { type: 'string' },
  expires: { type: 'string' },
  rollout: { type: 'string' },
} as const;

export const SECURE_SEND_USAGE = `Security (docs/security.md):
  --key SIGNER.key       sign a manifest for FILE (needs --product and --sequence)
  --manifest FILE        send a manifest signed offline ('iotupd manifest sign') instead
  --product NAME --sequence N [--version TEXT] [--expires DATE|+DAYSd] [--rollout PERCENT]
  --group-key FILE       tag every packet with the group key
  --mac poly1305|hmac    the tag without --encrypt (default poly1305: ChaCha20-Poly1305 over the
                         packet, 28 bytes; hmac: HMAC-SHA256/128, 16 bytes, twice the CPU)
  --encrypt [--cipher chacha20-poly1305|aes-256-gcm]   also encrypt every packet body
  --digests              sign digest batches of the datagrams (stops insiders; needs --key)`;

export const SECURE_RECV_OPTIONS = {
  trust: { type: 'string', multiple: true },
  'group-key': { type: 'string' },
  encrypt: { type: 'boolean' },
  cipher: { type: 'string' },
  mac: { type: 'string' },
  state: { type: 'string' },
  product: { type: 'string' },
  'max-jump': { type: 'string' },
  'no-clock': { type: 'boolean' },
  'device-id': { type: 'string' },
} as const;

export const SECURE_RECV_USAGE = `Security (docs/security.md):
  --trust KEY.pub        pinned root or signing key (repeatable); nothing is written before a
                         manifest signed under one of them is verified
  --product NAME         this device's product / class (required with --trust)
  --state DIR            anti-rollback state (highest installed sequence; required with --trust)
  --group-key FILE       require the group-key tag on every packet
  --mac poly1305|hmac    the tag expected on packets that are not encrypted (as the sender's)
  --encrypt [--cipher chacha20-poly1305|aes-256-gcm]   require encrypted packets
  --max-jump N           refuse a sequence more than N past the installed one
  --no-clock             this device has no trusted clock (expiry judged by the state's time floor)
  --device-id HEX        identity for staged rollouts`;

/** True when any of `options` was given: only then does the command load secure.ts. */
export function usesSecurity(values: Record<string, unknown>, options: Record<string, unknown>): boolean {
  return Object.keys(options).some((k) => values[k] !== undefined);
}
