import * as oidc from 'openid-client';

/** Provider kinds a tenant may configure. */
export const PROVIDER_KINDS = ['google', 'microsoft', 'github'] as const;

/** One of PROVIDER_KINDS. */
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** A tenant's configuration of one provider, with the secret decrypted. */
export interface ProviderConfig {
  kind: ProviderKind;
  clientId: string;
  clientSecret: string;
  /** OpenID issuer override (google, microsoft). */
  issuer?: string;
  /** GitHub web base URL override. */
  webBaseUrl?: string;
  /** GitHub API base URL override. */
  apiBaseUrl?: string;
}

/** What a provider says about the person who signed in. */
export interface ExternalProfile {
  /** The provider's stable id of the account. */
  id: string;
  email?: string;
  /** True only when the provider states the email was verified. */
  emailVerified: boolean;
  name: string;
}

/** Values kept server-side between the redirect to the provider and the callback. */
export interface PendingSecrets {
  codeVerifier: string;
  nonce?: string;
}

const DEFAULT_ISSUERS: Record<'google' | 'microsoft', string> = {
  google: 'https://accounts.google.com',
  // NOTE: the `common` endpoint's metadata names a `{tenantid}` issuer that differs from this
  // URL, so issuer validation fails with it; configure a directory-specific issuer such as
  // `https://login.microsoftonline.com/<directory id>/v2.0`.
  microsoft: 'https://login.microsoftonline.com/common/v2.0',
};

/** Returns true for http URLs on loopback hosts, the only plain-HTTP providers accepted. */
function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

async function openIdConfiguration(config: ProviderConfig): Promise<oidc.Configuration> {
  const issuer = new URL(config.issuer || DEFAULT_ISSUERS[config.kind as 'google' | 'microsoft']);
  return oidc.discovery(
    issuer,
    config.clientId,
    config.clientSecret,
    oidc.ClientSecretPost(config.clientSecret),
    isLoopbackHttp(issuer) ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
  );
}

function githubUrls(config: ProviderConfig) {
  const web = (config.webBaseUrl || 'https://github.com').replace(/\/$/, '');
  const api = (config.apiBaseUrl || 'https://api.github.com').replace(/\/$/, '');
  return { authorize: `${web}/login/oauth/authorize`, token: `${web}/login/oauth/access_token`, api };
}

/** Builds the URL that sends the browser to the provider, with state and PKCE (S256). */
export async function authorizationUrl(
  config: ProviderConfig,
  callbackUrl: string,
  state: string,
): Promise<{ url: string; secrets: PendingSecrets }> {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const codeChallenge = await oidc.calculatePKCECodeChallenge(codeVerifier);
  if (config.kind === 'github') {
    const url = new URL(githubUrls(config).authorize);
    url.search = new URLSearchParams({
      client_id: config.clientId,
      redirect_uri: callbackUrl,
      scope: 'read:user user:email',
      state,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
    }).toString();
    return { url: url.toString(), secrets: { codeVerifier } };
  }
  const configuration = await openIdConfiguration(config);
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(configuration, {
    redirect_uri: callbackUrl,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
  });
  return { url: url.toString(), secrets: { codeVerifier, nonce } };
}

/**
 * Exchanges the code of a callback and reads the profile. `currentUrl` is the callback URL the
 * browser requested, with its query. Throws an Error whose message says what the provider
 * rejected.
 */
export async function completeAuthorization(
  config: ProviderConfig,
  callbackUrl: string,
  currentUrl: URL,
  state: string,
  secrets: PendingSecrets,
): Promise<ExternalProfile> {
  if (config.kind === 'github') return completeGithub(config, callbackUrl, currentUrl, secrets);
  const configuration = await openIdConfiguration(config);
  const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
    pkceCodeVerifier: secrets.codeVerifier,
    expectedState: state,
    expectedNonce: secrets.nonce,
  });
  const claims = tokens.claims();
  if (!claims) throw new Error('the provider returned no ID token');
  return {
    id: claims.sub,
    email: typeof claims.email === 'string' ? claims.email : undefined,
    emailVerified: claims.email_verified === true,
    name: typeof claims.name === 'string' ? claims.name : '',
  };
}

async function completeGithub(
  config: ProviderConfig,
  callbackUrl: string,
  currentUrl: URL,
  secrets: PendingSecrets,
): Promise<ExternalProfile> {
  const urls = githubUrls(config);
  const code = currentUrl.searchParams.get('code');
  if (!code) throw new Error(`GitHub returned no code: ${currentUrl.searchParams.get('error') ?? 'unknown error'}`);
  const exchanged = await githubToken(config, { code, redirect_uri: callbackUrl, code_verifier: secrets.codeVerifier });
  if (!exchanged.access_token) throw new Error(`GitHub rejected the code: ${exchanged.error ?? 'no access token'}`);

  const headers = { authorization: `Bearer ${exchanged.access_token}`, accept: 'application/vnd.github+json' };
  const userResponse = await fetch(`${urls.api}/user`, { headers, signal: AbortSignal.timeout(10_000) });
  if (!userResponse.ok) throw new Error(`GitHub /user failed with HTTP ${userResponse.status}`);
  const user = (await userResponse.json()) as { id: number; login: string; name?: string | null };
  const emailsResponse = await fetch(`${urls.api}/user/emails`, { headers, signal: AbortSignal.timeout(10_000) });
  if (!emailsResponse.ok) throw new Error(`GitHub /user/emails failed with HTTP ${emailsResponse.status}`);
  const emails = (await emailsResponse.json()) as { email: string; primary: boolean; verified: boolean }[];
  const chosen = emails.find((entry) => entry.primary && entry.verified) ?? emails.find((entry) => entry.primary);
  return {
    id: String(user.id),
    email: chosen?.email,
    emailVerified: chosen?.verified === true,
    name: user.name || user.login,
  };
}

async function githubToken(
  config: ProviderConfig,
  parameters: Record<string, string>,
): Promise<{ access_token?: string; error?: string }> {
  const response = await fetch(githubUrls(config).token, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: config.clientId, client_secret: config.clientSecret, ...parameters }),
    signal: AbortSignal.timeout(10_000),
  });
  return (await response.json()) as { access_token?: string; error?: string };
}

/**
 * Checks a configuration against the provider by presenting the client credentials with a
 * made-up code: a provider that answers "bad code" (`invalid_grant`, `bad_verification_code`)
 * accepted the client; `invalid_client` or `incorrect_client_credentials` means it did not.
 * Returns undefined when the credentials work, else what went wrong.
 */
export async function checkCredentials(config: ProviderConfig, callbackUrl: string): Promise<string | undefined> {
  try {
    if (config.kind === 'github') {
      const answer = await githubToken(config, { code: 'tansu-credential-check', redirect_uri: callbackUrl });
      if (answer.error === 'bad_verification_code') return undefined;
      return answer.error ?? 'unexpected answer from GitHub';
    }
    const configuration = await openIdConfiguration(config);
    const endpoint = configuration.serverMetadata().token_endpoint;
    if (!endpoint) return 'the provider metadata has no token endpoint';
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'tansu-credential-check',
        redirect_uri: callbackUrl,
        client_id: config.clientId,
        client_secret: config.clientSecret,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const answer = (await response.json().catch(() => ({}))) as { error?: string; error_description?: string };
    if (answer.error === 'invalid_grant') return undefined;
    return [answer.error ?? `HTTP ${response.status}`, answer.error_description].filter(Boolean).join(': ');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
