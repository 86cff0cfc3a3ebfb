import { createTansuClient, type TansuClient, type TokenPair, type TokenStore } from '../../sdk/ts/src/index.ts';

/** The user signed in to the dashboard. */
export interface DashboardSession {
  /** `platform` for a platform admin, who may manage every tenant; `tenant` for a tenant admin. */
  kind: 'platform' | 'tenant';
  /** The signed-in admin's email. */
  email: string;
  /** The tenant a tenant admin belongs to; empty for a platform admin. */
  tenant: string;
  tokens: TokenPair;
}

const STORAGE_KEY = 'tansu.dashboard.session';

/**
 * Tenant id a platform admin's client sends. The Tenants service ignores the tenant header, and
 * the server names platform tokens' tenant `platform`, so this id never reaches a tenant.
 */
const PLATFORM_TENANT = 'platform';

/**
 * Reads the session from sessionStorage, which the browser clears when the tab closes. The
 * refresh token sits there too, readable by any script of this origin, so the page allows
 * scripts from this origin only (see the Content-Security-Policy in serve.ts).
 */
export function loadSession(): DashboardSession | undefined {
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (!saved) return undefined;
  try {
    return JSON.parse(saved) as DashboardSession;
  } catch {
    sessionStorage.removeItem(STORAGE_KEY);
    return undefined;
  }
}

/** Stores the session, or clears it when given undefined. */
export function saveSession(session: DashboardSession | undefined): void {
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** A token store over the saved session, so SDK refreshes reach sessionStorage. */
function sessionTokenStore(): TokenStore {
  return {
    get: () => loadSession()?.tokens,
    set: (tokens) => {
      const session = loadSession();
      if (!session || !tokens) saveSession(undefined);
      else saveSession({ ...session, tokens });
    },
  };
}

/** Creates an SDK client for `tenant` (or for platform calls) that carries the session's token. */
export function clientFor(tenant: string | undefined): TansuClient {
  return createTansuClient({
    baseUrl: location.origin,
    tenant: tenant || PLATFORM_TENANT,
    tokenStore: sessionTokenStore(),
  });
}

/**
 * Signs a platform admin in through PlatformAuth.CreateToken (the password grant) and saves the
 * session. Platform tokens come without a refresh token, so the session ends when the access
 * token expires.
 */
export async function signInPlatformAdmin(email: string, password: string): Promise<DashboardSession> {
  const client = createTansuClient({ baseUrl: location.origin, tenant: PLATFORM_TENANT });
  const response = await client.platformAuth.createToken({ grantType: 'password', username: email, password });
  const expiresAt = Date.now() + Number(response.accessToken ? response.expiresIn : 0n) * 1000;
  const session: DashboardSession = {
    kind: 'platform',
    email,
    tenant: '',
    // No refresh token: refreshAt after expiresAt keeps the SDK from trying a refresh it
    // cannot make, and an expired token fails with UNAUTHENTICATED, which signs out.
    tokens: { accessToken: response.accessToken, refreshToken: '', expiresAt, refreshAt: expiresAt + 1 },
  };
  saveSession(session);
  return session;
}

/** Signs a tenant admin in through TenantAuth.SignIn and saves the session. */
export async function signInTenantAdmin(tenant: string, email: string, password: string): Promise<DashboardSession> {
  const client = createTansuClient({ baseUrl: location.origin, tenant });
  await client.signIn({ email, password });
  const tokens = await client.tokenStore.get();
  if (!tokens) throw new Error('sign-in returned no tokens');
  const session: DashboardSession = { kind: 'tenant', email, tenant, tokens };
  saveSession(session);
  return session;
}

/** Ends the session: revokes a tenant admin's refresh tokens on the server, then forgets it. */
export async function signOut(): Promise<void> {
  const session = loadSession();
  try {
    if (session?.kind === 'tenant') await clientFor(session.tenant).signOut();
  } finally {
    saveSession(undefined);
  }
}
