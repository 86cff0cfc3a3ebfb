import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Address ranges a provider URL must not reach unless private provider URLs are allowed. */
const PRIVATE_RANGES = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT, RFC 6598
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local, RFC 4193
  ['fe80::', 10], // link-local
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, 'ipv6');
}

/** A provider URL that may not be fetched; the message names the URL, never a reply. */
export class ProviderUrlError extends Error {
  override name = 'ProviderUrlError';
}

/** Returns true for an IP address in a loopback, private, link-local, unique-local or CGNAT range. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const version = isIP(bare);
  if (version === 4) return PRIVATE_RANGES.check(bare, 'ipv4');
  if (version !== 6) return false;
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return PRIVATE_RANGES.check(mapped[1], 'ipv4');
  if (/^::ffff:/i.test(bare)) return true;
  return PRIVATE_RANGES.check(bare, 'ipv6');
}

/** Returns true for `localhost`, names under it, and those names with a trailing dot. */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Checks a provider URL without resolving its host: https (plain http only when private
 * addresses are allowed), no user name or password, and, unless allowed, a host that is
 * neither `localhost` nor an IP literal in a private range. Returns what is wrong, or undefined.
 */
export function providerUrlProblem(value: string, allowPrivate: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${value} is not a URL`;
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) return `${value} is not an https URL`;
  if (url.username || url.password) return `${value} must not contain a user name or password`;
  if (!url.hostname) return `${value} has no host`;
  if (allowPrivate) return undefined;
  if (isLocalhostName(url.hostname) || isPrivateAddress(url.hostname)) {
    return `${value} points to a local or private address`;
  }
  return undefined;
}

/**
 * Checks a provider URL as providerUrlProblem does, then, unless private addresses are
 * allowed, resolves its host and rejects it when any address is private. Throws
 * ProviderUrlError.
 *
 * NOTE: the check resolves the name once and fetch resolves it again when it connects. A
 * name whose DNS answer changes between the two (DNS rebinding, with a short TTL) can still
 * reach a private address. Closing that needs a connect-time check in the HTTP agent.
 */
export async function checkProviderUrl(value: string, allowPrivate: boolean): Promise<URL> {
  const problem = providerUrlProblem(value, allowPrivate);
  if (problem) throw new ProviderUrlError(problem);
  const url = new URL(value);
  if (allowPrivate || isIP(url.hostname.replace(/^\[|\]$/g, ''))) return url;
  let addresses: { address: string }[];
  try {
    addresses = await lookup(url.hostname, { all: true });
  } catch {
    throw new ProviderUrlError(`the host of ${url.origin} could not be resolved`);
  }
  if (addresses.some((entry) => isPrivateAddress(entry.address))) {
    throw new ProviderUrlError(`${url.origin} resolves to a local or private address`);
  }
  return url;
}

/**
 * Returns a fetch for provider calls that checks the URL with checkProviderUrl before
 * connecting and does not follow redirects, so a provider cannot forward the request to a private address.
 */
export function providerFetch(allowPrivate: boolean) {
  // The options are typed loosely: openid-client and jose each pass their own subset of RequestInit.
  return async (input: string | URL, init: object = {}): Promise<Response> => {
    const url = await checkProviderUrl(String(input), allowPrivate);
    return fetch(url, { ...(init as RequestInit), redirect: 'manual' });
  };
}
