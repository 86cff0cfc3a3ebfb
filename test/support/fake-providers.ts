import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
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

/**
 * Starts a real OpenID provider (oidc-provider) standing in for Google or Microsoft. Its login
 * and consent steps finish at once as the account chosen with `signInAs`.
 */
export async function startOpenIdProvider(client: { clientId: string; clientSecret: string; redirectUris: string[] }): Promise<FakeProvider> {
  let account: FakeAccount | undefined;
  const accounts = new Map<string, FakeAccount>();
  let provider: InstanceType<typeof Provider> | undefined;
  const server = createServer((request, response) => {
    void (async () => {
      if (request.url?.startsWith('/interaction/')) {
        const details = await provider!.interactionDetails(request, response);
        let result;
        if (details.prompt.name === 'login') {
          result = { login: { accountId: account!.id } };
        } else {
          const grant = new provider!.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
          grant.addOIDCScope(String(details.params.scope));
          result = { consent: { grantId: await grant.save() } };
        }
        await provider!.interactionFinished(request, response, result, { mergeWithLastSubmission: false });
        return;
      }
      provider!.callback()(request, response);
    })().catch((error) => {
      response.statusCode = 500;
      response.end(String(error));
    });
  });
  const baseUrl = await listen(server);
  provider = new Provider(baseUrl, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: client.redirectUris,
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    findAccount: (_context: unknown, id: string) => {
      const found = accounts.get(id);
      if (!found) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, email: found.email, email_verified: found.emailVerified, name: found.name }),
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_context: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
  return {
    baseUrl,
    signInAs(next) {
      account = next;
      accounts.set(next.id, next);
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
