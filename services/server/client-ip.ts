import type { HandlerContext } from '@connectrpc/connect';

import { clientAddressKey } from '../gateway/request-context.ts';

/**
 * Returns the client IP of a request. The socket's peer address is the answer unless that peer
 * is a configured trusted proxy; then the rightmost X-Forwarded-For entry that is not itself a
 * trusted proxy is, so a client cannot spoof its address by sending the header itself.
 */
export function clientIp(context: HandlerContext, trustedProxies: readonly string[]): string {
  const peer = normalizeAddress(context.values.get(clientAddressKey));
  if (!trustedProxies.includes(peer)) return peer;
  const forwarded = (context.requestHeader.get('x-forwarded-for') ?? '')
    .split(',')
    .map((entry) => normalizeAddress(entry.trim()))
    .filter(Boolean);
  for (let index = forwarded.length - 1; index >= 0; index--) {
    if (!trustedProxies.includes(forwarded[index])) return forwarded[index];
  }
  return peer;
}

/** Strips the IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` and `127.0.0.1` compare equal. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
