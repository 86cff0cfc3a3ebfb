import type { HandlerContext } from '@connectrpc/connect';
import type { FastifyRequest } from 'fastify';

import { clientAddressKey } from '../gateway/request-context.ts';

/**
 * Returns the client IP from a connection's peer address and its X-Forwarded-For header. When
 * the peer is a configured trusted proxy, the result is the rightmost X-Forwarded-For entry that
 * is not itself a trusted proxy. Otherwise it is the peer address, so a client cannot spoof its
 * address by sending the header itself.
 */
export function resolveClientIp(peerAddress: string, forwardedFor: string | null | undefined, trustedProxies: readonly string[]): string {
  const peer = normalizeAddress(peerAddress);
  if (!trustedProxies.includes(peer)) return peer;
  const forwarded = (forwardedFor ?? '')
    .split(',')
    .map((entry) => normalizeAddress(entry.trim()))
    .filter(Boolean);
  for (let index = forwarded.length - 1; index >= 0; index--) {
    if (!trustedProxies.includes(forwarded[index])) return forwarded[index];
  }
  return peer;
}

/** Returns the client IP of an RPC (see resolveClientIp). */
export function clientIp(context: HandlerContext, trustedProxies: readonly string[]): string {
  return resolveClientIp(context.values.get(clientAddressKey), context.requestHeader.get('x-forwarded-for'), trustedProxies);
}

/**
 * Returns the client IP of a plain Fastify route (see resolveClientIp). Fastify's own
 * `request.ip` does not know TANSU_TRUSTED_PROXIES, so routes use this instead.
 */
export function fastifyClientIp(request: FastifyRequest, trustedProxies: readonly string[]): string {
  const header = request.headers['x-forwarded-for'];
  const forwardedFor = Array.isArray(header) ? header.join(',') : header;
  return resolveClientIp(request.raw.socket?.remoteAddress ?? '', forwardedFor, trustedProxies);
}

/** Strips the IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` and `127.0.0.1` compare equal. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
