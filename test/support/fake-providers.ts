import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import Provider from 'oidc-provider';

/** An account the fake providers sign in as. */
export interface FakeAccount {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string;
}

/** A provider started by a test on 127.0.0.1; `signInAs` picks the account of the next sign-in. */
export interface FakeProvider {
  baseUrl: string;
  signInAs(account: FakeAccount): void;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type OpenIdClient = { clientId: string; clientSecret: string; redirectUris: string[] };
type OidcProvider = InstanceType<typeof Provider>;

/**
 * Creates an oidc-provider for `issuer` whose interactions live under `mountPath` and whose
 * accounts have the claims `claimsOf` returns.
 */
function createProvider(
  issuer: string,
  mountPath: string,
  client: OpenIdClient,
  claimsOf: (id: string) => Record<string, unknown> | undefined,
  scopeClaims: Record<string, string[]>,
): OidcProvider {
  return new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: client.redirectUris,
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    findAccount: (_context: unknown, id: string) => {
      const claims = claimsOf(id);
      if (!claims) return undefined;
      return { accountId: id, claims: () => ({ sub: id, ...claims }) };
    },
    claims: scopeClaims,
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_context: unknown, interaction: { uid: string }) => `${mountPath}/interaction/${interaction.uid}` },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
}

/** Finishes the login and consent steps of an interaction at once, as account `accountId`. */
async function finishInteraction(provider: OidcProvider, request: IncomingMessage, response: ServerResponse, accountId: string) {
  const details = await provider.interactionDetails(request, response);
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId } };
  } else {
    const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope));
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(request, response, result, { mergeWithLastSubmission: false });
}

/** Serves `request` with `provider`, mounted at `mountPath`, which the request URL starts with. */
async function serve(provider: OidcProvider, mountPath: string, request: IncomingMessage, response: ServerResponse, accountId: () => string) {
  // oidc-provider finds its mount path from originalUrl, as under Express's app.use(path).
  (request as IncomingMessage & { originalUrl?: string }).originalUrl = request.url;
  request.url = request.url!.slice(mountPath.length) || '/';
  if (request.url.startsWith('/interaction/')) return finishInteraction(provider, request, response, accountId());
  return provider.callback()(request, response);
}

function answerWithError(response: ServerResponse) {
  return (error: unknown) => {
    response.statusCode = 500;
    response.end(String(error));
  };
}

/**
 * Starts a real OpenID provider (oidc-provider) standing in for Google. Its login and consent
 * steps finish at once as the account chosen with `signInAs`.
 */
export async function startOpenIdProvider(client: OpenIdClient): Promise<FakeProvider> {
  let account: FakeAccount | undefined;
  const accounts = new Map<string, FakeAccount>();
  let provider: OidcProvider | undefined;
  const server = createServer((request, response) => {
    serve(provider!, '', request, response, () => account!.id).catch(answerWithError(response));
  });
  const baseUrl = await listen(server);
  provider = createProvider(
    baseUrl,
    '',
    client,
    (id) => {
      const found = accounts.get(id);
      return found && { email: found.email, email_verified: found.emailVerified, name: found.name };
    },
    { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  );
  return {
    baseUrl,
    signInAs(next) {
      account = next;
      accounts.set(next.id, next);
    },
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/** An account of the Microsoft stand-in: `tenant` is its directory id, `emailVerified` sets `xms_edov`. */
export interface MicrosoftAccount extends FakeAccount {
  tenant: string;
}

/** The Microsoft stand-in: one issuer per directory and a `common` authority over them. */
export interface MicrosoftStandIn {
  baseUrl: string;
  /** `<baseUrl>/common/v2.0`, whose metadata names the issuer `<baseUrl>/{tenantid}/v2.0`. */
  commonIssuer: string;
  /** `<baseUrl>/<tenant>/v2.0`, the issuer of one directory. */
  issuerOf(tenant: string): string;
  signInAs(account: MicrosoftAccount): void;
  close(): Promise<void>;
}

/**
 * Starts a stand-in for Microsoft Entra ID on 127.0.0.1 with a real oidc-provider per directory
 * at `/<tenant>/v2.0`. Its ID tokens carry `tid`, `email` and `xms_edov`, and no
 * `email_verified`. The `common` authority at `/common/v2.0` serves the metadata of the
 * directory of the account chosen with `signInAs`, with the issuer template
 * `<baseUrl>/{tenantid}/v2.0` in place of its issuer, as Microsoft publishes it.
 */
export async function startMicrosoftStandIn(client: OpenIdClient, tenants: string[]): Promise<MicrosoftStandIn> {
  let account: MicrosoftAccount | undefined;
  const accounts = new Map<string, MicrosoftAccount>();
  const providers = new Map<string, OidcProvider>();
  const server = createServer((request, response) => {
    const [authority] = new URL(request.url!, 'http://127.0.0.1').pathname.split('/').filter(Boolean);
    const work = async () => {
      if (authority === 'common' && request.url === '/common/v2.0/.well-known/openid-configuration') {
        const tenant = account?.tenant ?? tenants[0];
        const metadata = await (await fetch(`${baseUrl}/${tenant}/v2.0/.well-known/openid-configuration`)).json();
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ ...metadata, issuer: `${baseUrl}/{tenantid}/v2.0` }));
        return;
      }
      const provider = providers.get(authority ?? '');
      if (!provider) {
        response.writeHead(404).end();
        return;
      }
      await serve(provider, `/${authority}/v2.0`, request, response, () => account!.id);
    };
    work().catch(answerWithError(response));
  });
  const baseUrl = await listen(server);
  for (const tenant of tenants) {
    const claimsOf = (id: string) => {
      const found = accounts.get(`${tenant}/${id}`);
      return found && { tid: tenant, email: found.email, xms_edov: found.emailVerified, name: found.name };
    };
    const scopeClaims = { openid: ['sub', 'tid'], email: ['email', 'xms_edov'], profile: ['name'] };
    providers.set(tenant, createProvider(`${baseUrl}/${tenant}/v2.0`, `/${tenant}/v2.0`, client, claimsOf, scopeClaims));
  }
  return {
    baseUrl,
    commonIssuer: `${baseUrl}/common/v2.0`,
    issuerOf: (tenant) => `${baseUrl}/${tenant}/v2.0`,
    signInAs(next) {
      account = next;
      accounts.set(`${next.tenant}/${next.id}`, next);
    },
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/** Starts a fake of GitHub's OAuth web flow and its `/user` and `/user/emails` API. */
export async function startGithubFake(client: { clientId: string; clientSecret: string }): Promise<FakeProvider> {
  let account: (FakeAccount & { emails: { email: string; primary: boolean; verified: boolean }[] }) | undefined;
  const codes = new Map<string, { account: NonNullable<typeof account>; challenge: string; redirectUri: string }>();
  const tokens = new Map<string, NonNullable<typeof account>>();
  const server = createServer((request, response) => {
    const url = new URL(request.url!, 'http://127.0.0.1');
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname === '/login/oauth/authorize') {
      const code = randomBytes(10).toString('hex');
      const redirectUri = url.searchParams.get('redirect_uri')!;
      codes.set(code, { account: account!, challenge: url.searchParams.get('code_challenge') ?? '', redirectUri });
      const target = new URL(redirectUri);
      target.searchParams.set('code', code);
      target.searchParams.set('state', url.searchParams.get('state') ?? '');
      response.writeHead(302, { location: target.toString() });
      response.end();
      return;
    }
    if (url.pathname === '/login/oauth/access_token' && request.method === 'POST') {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        const form = new URLSearchParams(body);
        if (form.get('client_id') !== client.clientId || form.get('client_secret') !== client.clientSecret) {
          return json(200, { error: 'incorrect_client_credentials' });
        }
        const pending = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        if (!pending || createHash('sha256').update(verifier).digest('base64url') !== pending.challenge) {
          return json(200, { error: 'bad_verification_code' });
        }
        const token = randomBytes(16).toString('hex');
        tokens.set(token, pending.account);
        return json(200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      });
      return;
    }
    const owner = tokens.get((request.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!owner) return json(401, { message: 'Bad credentials' });
    if (url.pathname === '/user') return json(200, { id: Number(owner.id), login: owner.name.toLowerCase(), name: owner.name, email: null });
    if (url.pathname === '/user/emails') return json(200, owner.emails);
    return json(404, { message: 'Not Found' });
  });
  const baseUrl = await listen(server);
  return {
    baseUrl,
    signInAs(next) {
      account = { ...next, emails: [{ email: next.email, primary: true, verified: next.emailVerified }] };
    },
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/**
 * Follows redirects from `url` like a browser (keeping cookies per host) until a response is
 * not a redirect, and returns it.
 */
export async function followRedirects(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const jars = new Map<string, Map<string, string>>();
  let current = url;
  for (let hop = 0; hop < 20; hop++) {
    const host = new URL(current).host;
    const jar = jars.get(host) ?? new Map<string, string>();
    jars.set(host, jar);
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(current, { redirect: 'manual', headers: cookie ? { ...headers, cookie } : headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const separator = pair.indexOf('=');
      jar.set(pair.slice(0, separator).trim(), pair.slice(separator + 1));
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return response;
    current = new URL(location, current).toString();
  }
  throw new Error(`more than 20 redirects from ${url}`);
}
