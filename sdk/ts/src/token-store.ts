/** The tokens of a signed-in user, as the SDK keeps them between calls. */
export interface TokenPair {
  /** JWT sent as `Authorization: Bearer <accessToken>`. */
  accessToken: string;
  /** Opaque token that TenantAuth.Refresh exchanges for a new pair. */
  refreshToken: string;
  /** When the access token expires, in milliseconds since the epoch (client clock). */
  expiresAt: number;
  /**
   * When the SDK refreshes ahead of expiry, in milliseconds since the epoch: `expiresAt` less a
   * margin, so a call does not leave with a token that expires on the way.
   */
  refreshAt: number;
}

/**
 * Storage for the token pair. Both methods may return a promise, so a store can sit on
 * async storage (IndexedDB, a keychain, a file). `set(undefined)` signs out locally.
 *
 * To persist a session across page loads, write the pair as JSON on `set` and read it back on
 * `get`, for example with `localStorage` (see the README). The refresh token grants new access
 * tokens for as long as the session lasts: keep it where only this application can read it.
 */
export interface TokenStore {
  get(): TokenPair | undefined | Promise<TokenPair | undefined>;
  set(tokens: TokenPair | undefined): void | Promise<void>;
}

/** Creates a store that keeps the token pair in memory; a page reload or restart signs out. */
export function createMemoryTokenStore(initial?: TokenPair): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}

/** Default seconds before expiry at which the SDK refreshes the access token. */
export const DEFAULT_REFRESH_MARGIN_SECONDS = 30;

/**
 * Turns a SignUp, SignIn or Refresh response into a TokenPair. The refresh margin is capped at
 * half the token's lifetime, so a tenant with short-lived tokens does not refresh on every call.
 */
export function tokenPairFrom(
  response: { accessToken: string; refreshToken: string; expiresIn: bigint },
  nowMs: number,
  marginSeconds: number = DEFAULT_REFRESH_MARGIN_SECONDS,
): TokenPair {
  const lifetimeMs = Number(response.expiresIn) * 1000;
  const marginMs = Math.min(marginSeconds * 1000, lifetimeMs / 2);
  return {
    accessToken: response.accessToken,
    refreshToken: response.refreshToken,
    expiresAt: nowMs + lifetimeMs,
    refreshAt: nowMs + lifetimeMs - marginMs,
  };
}
