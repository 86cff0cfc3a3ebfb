import { createRemoteJWKSet, customFetch as jwksFetch } from 'jose';
import * as oidc from 'openid-client';

import { checkMetadataIssuer, MICROSOFT_COMMON_ISSUER, verifyMicrosoftIdToken } from './microsoft.ts';
import { checkProviderUrl, providerFetch, ProviderUrlError } from './provider-urls.ts';

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
  /** Whether URLs may reach loopback and private addresses (TANSU_ALLOW_PRIVATE_PROVIDER_URLS). */
  allowPrivateUrls: boolean;
}

/** What a provider says about the person who signed in. */
export interface ExternalProfile {
  /** The provider's stable id of the account; for Microsoft `<tid>:<sub>`. */
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
  microsoft: MICROSOFT_COMMON_ISSUER,
};

async function openIdConfiguration(config: ProviderConfig): Promise<oidc.Configuration> {
  // Checked here first, so a refused issuer fails as ProviderUrlError rather than as whatever
  // openid-client makes of it.
  const issuer = await checkProviderUrl(
    config.issuer || DEFAULT_ISSUERS[config.kind as 'google' | 'microsoft'],
    config.allowPrivateUrls,
  );
  // Every request openid-client makes, discovery and the endpoints the metadata names, goes
  // through providerFetch, which checks the URL first.
  const options = {
    [oidc.customFetch]: providerFetch(config.allowPrivateUrls),
    timeout: 10,
    ...(config.allowPrivateUrls ? { execute: [oidc.allowInsecureRequests] } : {}),
  };
  const authentication = oidc.ClientSecretPost(config.clientSecret);
  if (config.kind !== 'microsoft') return oidc.discovery(issuer, config.clientId, config.clientSecret, authentication, options);

  // Given the issuer URL, openid-client rejects metadata whose issuer differs from it, except
  // on login.microsoftonline.com. Given the document URL it compares nothing, so Tansu applies
  // its own Microsoft rule here and in verifyMicrosoftIdToken, on any host.
  const document = new URL(`${issuer.href.replace(/\/$/, '')}/.well-known/openid-configuration`);
  const configuration = await oidc.discovery(document, config.clientId, config.clientSecret, authentication, options);
  const problem = checkMetadataIssuer(issuer.href, configuration.serverMetadata().issuer);
  if (problem) throw new Error(problem);
  return configuration;
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
  if (config.kind === 'microsoft') return completeMicrosoft(config, configuration, callbackUrl, currentUrl, secrets);
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

/**
 * Exchanges the code at Microsoft's token endpoint and checks the ID token with
 * verifyMicrosoftIdToken, because openid-client cannot apply the `{tenantid}` issuer rule to
 * metadata read from the document URL. The state was checked by the caller, which found the
 * pending sign-in by it.
 */
async function completeMicrosoft(
  config: ProviderConfig,
  configuration: oidc.Configuration,
  callbackUrl: string,
  currentUrl: URL,
  secrets: PendingSecrets,
): Promise<ExternalProfile> {
  const metadata = configuration.serverMetadata();
  const code = currentUrl.searchParams.get('code');
  if (!code) throw new Error(`Microsoft returned no code: ${currentUrl.searchParams.get('error') ?? 'unknown error'}`);
  if (!metadata.token_endpoint || !metadata.jwks_uri) throw new Error('the provider metadata has no token endpoint or jwks_uri');
  if (!secrets.nonce) throw new Error('the pending sign-in has no nonce');
  const fetchChecked = providerFetch(config.allowPrivateUrls);

  const response = await fetchChecked(metadata.token_endpoint, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: callbackUrl,
      code_verifier: secrets.codeVerifier,
      client_id: config.clientId,
      client_secret: config.clientSecret,
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const tokens = (await response.json().catch(() => ({}))) as { id_token?: unknown; error?: string };
  if (!response.ok || typeof tokens.id_token !== 'string') {
    throw new Error(`Microsoft rejected the code: ${tokens.error ?? `HTTP ${response.status} without an ID token`}`);
  }

  const identity = await verifyMicrosoftIdToken(tokens.id_token, createRemoteJWKSet(new URL(metadata.jwks_uri), { [jwksFetch]: fetchChecked }), {
    metadataIssuer: metadata.issuer,
    clientId: config.clientId,
    nonce: secrets.nonce,
  });
  return {
    id: `${identity.tenantId}:${identity.subject}`,
    email: identity.email,
    emailVerified: identity.email !== undefined && identity.emailDomainVerified,
    name: identity.name,
  };
}

async function completeGithub(
  config: ProviderConfig,
  callbackUrl: string,
  currentUrl: URL,
  secrets: PendingSecrets,
): Promise<ExternalProfile> {
  const urls = githubUrls(config);
  const fetchChecked = providerFetch(config.allowPrivateUrls);
  const code = currentUrl.searchParams.get('code');
  if (!code) throw new Error(`GitHub returned no code: ${currentUrl.searchParams.get('error') ?? 'unknown error'}`);
  const exchanged = await githubToken(config, { code, redirect_uri: callbackUrl, code_verifier: secrets.codeVerifier });
  if (!exchanged.access_token) throw new Error(`GitHub rejected the code: ${exchanged.error ?? 'no access token'}`);

  const headers = { authorization: `Bearer ${exchanged.access_token}`, accept: 'application/vnd.github+json' };
  const userResponse = await fetchChecked(`${urls.api}/user`, { headers, signal: AbortSignal.timeout(10_000) });
  if (!userResponse.ok) throw new Error(`GitHub /user failed with HTTP ${userResponse.status}`);
  const user = (await userResponse.json()) as { id: number; login: string; name?: string | null };
  const emailsResponse = await fetchChecked(`${urls.api}/user/emails`, { headers, signal: AbortSignal.timeout(10_000) });
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
  const response = await providerFetch(config.allowPrivateUrls)(githubUrls(config).token, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: config.clientId, client_secret: config.clientSecret, ...parameters }),
    signal: AbortSignal.timeout(10_000),
  });
  return (await response.json()) as { access_token?: string; error?: string };
}

/** Fixed summaries of the error codes checkCredentials recognises; nothing else of a reply is shown. */
const CREDENTIAL_ANSWERS: Record<string, string> = {
  invalid_client: 'invalid_client: the provider rejected the client id or secret',
  incorrect_client_credentials: 'invalid_client: the provider rejected the client id or secret',
  unauthorized_client: 'unauthorized_client: the provider does not allow this client the code grant',
};

/**
 * Checks a configuration against the provider by presenting the client credentials with a
 * made-up code: a provider that answers "bad code" (`invalid_grant`, `bad_verification_code`)
 * accepted the client; `invalid_client` or `incorrect_client_credentials` means it did not.
 * Returns undefined when the credentials work, else a short fixed summary of what went wrong;
 * the reply's own text is never returned, since the caller shows it to the tenant admin.
 * Throws ProviderUrlError when a URL may not be fetched.
 */
export async function checkCredentials(config: ProviderConfig, callbackUrl: string): Promise<string | undefined> {
  try {
    if (config.kind === 'github') {
      const answer = await githubToken(config, { code: 'tansu-credential-check', redirect_uri: callbackUrl });
      if (answer.error === 'bad_verification_code') return undefined;
      return CREDENTIAL_ANSWERS[answer.error ?? ''] ?? 'unexpected answer from GitHub';
    }
    const configuration = await openIdConfiguration(config);
    const endpoint = configuration.serverMetadata().token_endpoint;
    if (!endpoint) return 'the provider metadata has no token endpoint';
    const response = await providerFetch(config.allowPrivateUrls)(endpoint, {
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
    const answer = (await response.json().catch(() => ({}))) as { error?: unknown };
    if (answer.error === 'invalid_grant') return undefined;
    const known = typeof answer.error === 'string' ? CREDENTIAL_ANSWERS[answer.error] : undefined;
    return known ?? `unexpected answer from the token endpoint (HTTP ${response.status})`;
  } catch (error) {
    if (error instanceof ProviderUrlError) throw error;
    const cause = error instanceof Error ? (error.cause as Error | undefined) : undefined;
    if (cause instanceof ProviderUrlError) throw cause;
    return 'the provider could not be reached, or its metadata was not valid';
  }
}
