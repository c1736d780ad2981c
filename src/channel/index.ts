// Channel names to IPv6 multicast groups (Librecast-compatible). See docs/channels.md.
export { formatIpv6, parseIpv6, canonicalIpv6, isMulticast, type Ipv6Bytes } from './address.js';
export {
  channelGroup,
  groupBytes,
  hashGroup,
  placeGroup,
  withScope,
  ssmGroup,
  sidebandGroup,
  sidehashGroup,
  nameBytes,
  DEFAULT_PORT as DEFAULT_CHANNEL_PORT,
  SCHEMES,
  SCOPES,
  SIDEHASH_KEY_BYTES,
  type Scheme,
  type Scope,
  type GroupOptions,
  type ChannelName,
} from './naming.js';
export { Channel, type ChannelOptions } from './channel.js';
export { resolveGroup, type ChannelTarget } from './resolve.js';
