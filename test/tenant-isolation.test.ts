import { createPublicKey } from 'node:crypto';

import * as jose from 'jose';

import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let adminToken: string;

beforeAll(async () => {
  server = await startServer();
  adminToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  await provisionTenant(server.baseUrl, adminToken, 'acme');
  await provisionTenant(server.baseUrl, adminToken, 'widgets');
});

afterAll(async () => {
  await server?.stop();
});

const password = 'a perfectly fine passphrase';

function signUp(tenant: string, email: string, secret = password) {
  return rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signup`, { body: { email, password: secret } });
}

function signIn(tenant: string, email: string, secret = password) {
  return rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, { body: { email, password: secret } });
}

describe('email normalization', () => {
  test('mixed-case signup signs in lowercased as the same user', async () => {
    const created = await signUp('acme', 'Mixed.Case@Example.com');
    expect(created.status).toBe(200);
    expect(created.body.user.email).toBe('mixed.case@example.com');

    const signedIn = await signIn('acme', 'mixed.case@example.com');
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user.id).toBe(created.body.user.id);
  });

  test('second signup in another case creates nothing', async () => {
    const again = await signUp('acme', 'MIXED.CASE@EXAMPLE.COM', 'another strong passphrase');
    expect(again.status).toBe(409);
    expect(again.body.details[0].reason).toBe('EMAIL_ALREADY_EXISTS');

    const secondPassword = await signIn('acme', 'mixed.case@example.com', 'another strong passphrase');
    expect(secondPassword.status).toBe(401);

    const firstPassword = await signIn('acme', 'MIXED.case@example.COM');
    expect(firstPassword.status).toBe(200);
  });

  test('same address in another tenant is another user', async () => {
    const acme = await signIn('acme', 'mixed.case@example.com');
    const widgets = await signUp('widgets', 'mixed.case@example.com');
    expect(widgets.status).toBe(200);
    expect(widgets.body.user.id).not.toBe(acme.body.user.id);
  });
});

describe('cross-tenant tokens', () => {
  beforeAll(async () => {
    await signUp('acme', 'only-acme@example.com');
    await signUp('acme', 'both@example.com');
    await signUp('widgets', 'both@example.com', 'widgets passphrase 42');
  });

  test('acme user cannot sign in to widgets', async () => {
    const response = await signIn('widgets', 'only-acme@example.com');
    expect(response.status).toBe(401);
    expect(response.body.details[0].reason).toBe('INVALID_CREDENTIALS');
  });

  test('acme access token is rejected by widgets', async () => {
    const acme = await signIn('acme', 'both@example.com');
    const me = await rest('GET', `${server.baseUrl}/identity/api/widgets/auth/me`, { token: acme.body.accessToken });
    expect([401, 403]).toContain(me.status);
    const own = await rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token: acme.body.accessToken });
    expect(own.status).toBe(200);
    expect(own.body.user.email).toBe('both@example.com');
  });

  test('malformed tenant id is INVALID_ARGUMENT for any token', async () => {
    const acme = await signIn('acme', 'both@example.com');
    const response = await rest('GET', `${server.baseUrl}/data/api/Bad_Tenant/collections/notes/documents`, {
      token: acme.body.accessToken,
    });
    expect(response.status).toBe(400);
    expect(response.body.details[0].reason).toBe('INVALID_TENANT_ID');
  });

  test('acme refresh token is rejected by widgets', async () => {
    const acme = await signIn('acme', 'both@example.com');
    const response = await rest('POST', `${server.baseUrl}/identity/api/widgets/auth/refresh`, {
      body: { refreshToken: acme.body.refreshToken },
    });
    expect(response.status).toBe(401);
    const stillGood = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/refresh`, {
      body: { refreshToken: acme.body.refreshToken },
    });
    expect(stillGood.status).toBe(200);
  });
});

describe('forged tokens', () => {
  let genuine: string;
  let jwks: { keys: Array<Record<string, string>> };

  beforeAll(async () => {
    await signUp('acme', 'forger@example.com');
    genuine = (await signIn('acme', 'forger@example.com')).body.accessToken;
    jwks = (await rest('GET', `${server.baseUrl}/identity/acme/.well-known/jwks.json`)).body;
  });

  const me = (token: string) => rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token });
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const parts = () => genuine.split('.');
  const payload = () => JSON.parse(Buffer.from(parts()[1], 'base64url').toString());

  test('genuine token is accepted', async () => {
    expect((await me(genuine)).status).toBe(200);
  });

  test.each(['none', 'None', 'NONE', 'nOnE'])('alg %s is rejected with and without signature', async (alg) => {
    const header = encode({ alg, typ: 'JWT', kid: jwks.keys[0].kid });
    const unsigned = `${header}.${parts()[1]}.`;
    const withOldSignature = `${header}.${parts()[1]}.${parts()[2]}`;
    expect((await me(unsigned)).status).toBe(401);
    expect((await me(withOldSignature)).status).toBe(401);
  });

  test('HS256 with the public key as PEM is rejected', async () => {
    const pem = createPublicKey({ key: jwks.keys[0] as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const forged = await new jose.SignJWT(payload())
      .setProtectedHeader({ alg: 'HS256', kid: jwks.keys[0].kid })
      .sign(new TextEncoder().encode(String(pem)));
    expect((await me(forged)).status).toBe(401);
  });

  test('HS256 with the public key as JWK JSON is rejected', async () => {
    const forged = await new jose.SignJWT(payload())
      .setProtectedHeader({ alg: 'HS256', kid: jwks.keys[0].kid })
      .sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0])));
    expect((await me(forged)).status).toBe(401);
  });

  test('RS256 with unknown kid or no kid is rejected', async () => {
    const { privateKey } = await jose.generateKeyPair('RS256');
    const unknownKid = await new jose.SignJWT(payload()).setProtectedHeader({ alg: 'RS256', kid: 'not-a-key' }).sign(privateKey);
    const noKid = await new jose.SignJWT(payload()).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    expect((await me(unknownKid)).status).toBe(401);
    expect((await me(noKid)).status).toBe(401);
  });

  test('token verifies against the published JWKS', async () => {
    const keySet = jose.createLocalJWKSet(jwks as jose.JSONWebKeySet);
    const { payload: claims, protectedHeader } = await jose.jwtVerify(genuine, keySet, {
      issuer: `${server.baseUrl}/identity/acme`,
      algorithms: ['RS256'],
    });
    expect(protectedHeader.kid).toBe(jwks.keys[0].kid);
    expect(claims.tid).toBe('acme');
    expect(typeof claims.jti).toBe('string');
    expect(claims.roles).toEqual(['User']);
    expect(String(claims.scope)).toContain('functions.execute');
  });
});

describe('refresh families', () => {
  test('reuse of a rotated token revokes the family', async () => {
    await signUp('acme', 'rotator@example.com');
    const r0 = (await signIn('acme', 'rotator@example.com')).body.refreshToken;
    const refresh = (token: string) => rest('POST', `${server.baseUrl}/identity/api/acme/auth/refresh`, { body: { refreshToken: token } });

    const r1 = (await refresh(r0)).body.refreshToken;
    const r2Response = await refresh(r1);
    expect(r2Response.status).toBe(200);
    const r2 = r2Response.body.refreshToken;

    // Past the grace window a reuse of R0 revokes the family.
    await new Promise((done) => setTimeout(done, 6_000));
    const reuse = await refresh(r0);
    expect(reuse.status).toBe(401);
    expect(reuse.body.details[0].reason).toBe('REFRESH_TOKEN_REUSED');
    const afterRevoke = await refresh(r2);
    expect(afterRevoke.status).toBe(401);
  });

  test('two concurrent refreshes of one token share one successor', async () => {
    await signUp('acme', 'racer@example.com');
    const r0 = (await signIn('acme', 'racer@example.com')).body.refreshToken;
    const refresh = () => rest('POST', `${server.baseUrl}/identity/api/acme/auth/refresh`, { body: { refreshToken: r0 } });
    const [first, second] = await Promise.all([refresh(), refresh()]);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).toBe(first.body.refreshToken);
  });
});

describe('platform JWKS', () => {
  test('platform admin tokens verify against it', async () => {
    const jwks = await rest('GET', `${server.baseUrl}/identity/platform/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys.length).toBeGreaterThanOrEqual(1);
    const { payload } = await jose.jwtVerify(adminToken, jose.createLocalJWKSet(jwks.body), {
      issuer: `${server.baseUrl}/identity/platform`,
      algorithms: ['RS256'],
    });
    expect(payload.tid).toBe('platform');
    expect(payload.roles).toEqual(['PlatformAdmin']);
  });
});
