import { Code, ConnectError, type Transport } from '@connectrpc/connect';
import type { DescMethod } from '@bufbuild/protobuf';

import type { TokenPair, TokenStore } from './token-store.ts';

/** Session state that the session transport reads: the tenant, the tokens and a refresher. */
export interface Session {
  tenant: string;
  tokenStore: TokenStore;
  /** Current time in milliseconds since the epoch. */
  now(): number;
  /**
   * Exchanges the stored refresh token for a new pair and stores it. Concurrent callers share
   * one exchange. Resolves to undefined when no one is signed in.
   */
  refresh(): Promise<TokenPair | undefined>;
}

/**
 * Calls that never carry the user's access token and are never refreshed and retried: they
 * create or exchange tokens themselves, and their UNAUTHENTICATED (a wrong password, a
 * rejected refresh token) is the result, not a sign of an expired access token. PlatformAuth
 * speaks for platform admins, whose tokens this client does not hold.
 */
function isTokenCall(method: DescMethod): boolean {
  const service = method.parent.typeName;
  if (service === 'tansu.platform.v1.PlatformAuth') return true;
  return service === 'tansu.identity.v1.TenantAuth' && ['SignUp', 'SignIn', 'Refresh'].includes(method.name);
}

function requestHeader(init: HeadersInit | undefined, tenant: string, tokens: TokenPair | undefined): Headers {
  const header = new Headers(init);
  if (!header.has('x-tansu-tenant')) header.set('x-tansu-tenant', tenant);
  if (tokens && !header.has('authorization')) header.set('authorization', `Bearer ${tokens.accessToken}`);
  return header;
}

/** Reads the stored pair and refreshes it first when it is due (see TokenPair.refreshAt). */
async function freshTokens(session: Session): Promise<TokenPair | undefined> {
  const tokens = await session.tokenStore.get();
  if (!tokens || session.now() < tokens.refreshAt) return tokens;
  return session.refresh();
}

/**
 * Wraps a transport so that every call names the session's tenant (`X-Tansu-Tenant`) and
 * carries its access token. A unary call that fails with UNAUTHENTICATED is retried once with a new
 * access token: from a refresh, or, when another call refreshed meanwhile, the stored one. The
 * retry's failure, or the original error when no refresh was possible, reaches the caller.
 * Streaming calls are not retried, since their request stream cannot be replayed; they still
 * refresh ahead of expiry.
 */
export function createSessionTransport(inner: Transport, session: Session): Transport {
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      if (isTokenCall(method)) {
        const plain = requestHeader(header, session.tenant, undefined);
        return inner.unary(method, signal, timeoutMs, plain, input, contextValues);
      }

      const sent = await freshTokens(session);
      try {
        const withToken = requestHeader(header, session.tenant, sent);
        return await inner.unary(method, signal, timeoutMs, withToken, input, contextValues);
      } catch (error) {
        if (!sent || ConnectError.from(error).code !== Code.Unauthenticated) throw error;

        let next = await session.tokenStore.get();
        if (next?.accessToken === sent.accessToken) {
          try {
            next = await session.refresh();
          } catch {
            throw error;
          }
        }
        if (!next) throw error;
        const retried = requestHeader(header, session.tenant, next);
        return inner.unary(method, signal, timeoutMs, retried, input, contextValues);
      }
    },

    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const tokens = isTokenCall(method) ? undefined : await freshTokens(session);
      const withToken = requestHeader(header, session.tenant, tokens);
      return inner.stream(method, signal, timeoutMs, withToken, input, contextValues);
    },
  };
}
