import { createHmac, randomBytes } from 'node:crypto';

import { ConnectError, Code } from '@connectrpc/connect';
import { exportSPKI, importJWK, importPKCS8, SignJWT, type CryptoKey } from 'jose';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import { createMigratedDatabase } from '../../test/support/database.ts';
import { createSecretBox } from '../core/secret-box.ts';
import { createKeyStore, generateSigningKey, type GeneratedSigningKey } from './signing-keys.ts';
import {
  issueAccessToken,
  verifyAccessToken,
  type TokenCheck,
  type VerifyAccessTokenOptions,
} from './tokens.ts';

const ISSUER = 'https://tansu.test/identity/acme';
const TENANT = 'acme';
const NOW = new Date('2030-01-15T12:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;

let key: GeneratedSigningKey;
let privateKey: CryptoKey;
let publicKey: CryptoKey;
let resolvedKids: string[];

beforeAll(async () => {
  key = await generateSigningKey();
  privateKey = await importPKCS8(key.privatePem, 'RS256');
  publicKey = (await importJWK(key.publicJwk, 'RS256')) as CryptoKey;
});

beforeEach(() => {
  resolvedKids = [];
});

function verifyOptions(overrides: Partial<VerifyAccessTokenOptions> = {}): VerifyAccessTokenOptions {
  return {
    issuer: ISSUER,
    tenant: TENANT,
    now: NOW,
    resolveKey: async (kid) => {
      resolvedKids.push(kid);
      return kid === key.kid ? publicKey : undefined;
    },
    ...overrides,
  };
}

async function issue(overrides: { tenant?: string; issuer?: string; now?: Date; lifetimeSeconds?: number } = {}) {
  return issueAccessToken({
    signer: { kid: key.kid, privateKey },
    issuer: overrides.issuer ?? ISSUER,
    subject: 'user-1',
    tenant: overrides.tenant ?? TENANT,
    audience: 'acme-app',
    scope: 'openid profile',
    roles: ['User'],
    lifetimeSeconds: overrides.lifetimeSeconds ?? 900,
    now: overrides.now ?? NOW,
  });
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index], 'base64url').toString('utf8'));
}

/** Builds a token by hand: the given header over the payload of `original`. */
function withHeader(original: string, header: Record<string, unknown>, signature: string): string {
  const payload = original.split('.')[1];
  return `${encodeJson(header)}.${payload}.${signature}`;
}

function hmacToken(original: string, secret: string): string {
  const header = encodeJson({ alg: 'HS256', typ: 'at+jwt', kid: key.kid });
  const payload = original.split('.')[1];
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** Awaits a rejected verification and returns its code, reason and failed check. */
async function rejection(promise: Promise<unknown>): Promise<{ code: Code; reason: string; check: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    const connectError = error as ConnectError;
    const [info] = connectError.findDetails(ErrorInfoSchema);
    return { code: connectError.code, reason: info.reason, check: info.metadata.check };
  }
  throw new Error('verification succeeded but a rejection was expected');
}

function invalid(check: TokenCheck) {
  return { code: Code.Unauthenticated, reason: 'INVALID_TOKEN', check };
}

describe('issueAccessToken and verifyAccessToken', () => {
  test('issued token verifies with its claims', async () => {
    const { token, expiresIn, jti } = await issue();
    expect(expiresIn).toBe(900);
    expect(decodePart(token, 0)).toEqual({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' });

    const claims = await verifyAccessToken(token, verifyOptions({ audience: 'acme-app' }));
    expect(claims).toEqual({
      iss: ISSUER,
      sub: 'user-1',
      tid: TENANT,
      aud: 'acme-app',
      scope: 'openid profile',
      roles: ['User'],
      jti,
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 900,
    });
    expect(resolvedKids).toEqual([key.kid]);
  });

  test('each token gets its own jti', async () => {
    const first = await issue();
    const second = await issue();
    expect(first.jti).not.toBe(second.jti);
  });

  test('lifetime must be positive', async () => {
    await expect(issue({ lifetimeSeconds: 0 })).rejects.toThrow(/positive whole number/);
  });
});

describe('verifyAccessToken rejections', () => {
  test.each(['none', 'NONE', 'nOnE', 'None'])('alg %s without signature', async (alg) => {
    const { token } = await issue();
    const forged = withHeader(token, { alg, typ: 'at+jwt', kid: key.kid }, '');
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
    expect(resolvedKids).toEqual([]);
  });

  test.each(['none', 'NONE', 'nOnE'])('alg %s with original signature', async (alg) => {
    const { token } = await issue();
    const forged = withHeader(token, { alg, typ: 'at+jwt', kid: key.kid }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
    expect(resolvedKids).toEqual([]);
  });

  test('alg none without kid', async () => {
    const { token } = await issue();
    const forged = withHeader(token, { alg: 'none' }, '');
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
  });

  test('HS256 keyed with public key PEM', async () => {
    const { token } = await issue();
    const pem = await exportSPKI(publicKey);
    for (const secret of [pem, pem.trim()]) {
      const forged = hmacToken(token, secret);
      expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
    }
    expect(resolvedKids).toEqual([]);
  });

  test('HS256 keyed with public JWK JSON', async () => {
    const { token } = await issue();
    const forged = hmacToken(token, JSON.stringify(key.publicJwk));
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
    expect(resolvedKids).toEqual([]);
  });

  test.each(['RS384', 'RS512', 'PS256', 'ES256', 'rs256', 'HS512'])('alg %s', async (alg) => {
    const { token } = await issue();
    const forged = withHeader(token, { alg, typ: 'at+jwt', kid: key.kid }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
  });

  test('PS256 with a valid signature', async () => {
    const { token } = await issue();
    const pssKey = await importPKCS8(key.privatePem, 'PS256');
    const payload = decodePart(token, 1);
    const forged = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'PS256', typ: 'at+jwt', kid: key.kid })
      .sign(pssKey);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('ALGORITHM'));
  });

  test('missing kid', async () => {
    const { token } = await issue();
    const forged = withHeader(token, { alg: 'RS256', typ: 'at+jwt' }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('KID_MISSING'));
    const empty = withHeader(token, { alg: 'RS256', typ: 'at+jwt', kid: '' }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(empty, verifyOptions()))).toEqual(invalid('KID_MISSING'));
    const numeric = withHeader(token, { alg: 'RS256', typ: 'at+jwt', kid: 7 }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(numeric, verifyOptions()))).toEqual(invalid('KID_MISSING'));
  });

  test('unknown kid', async () => {
    const { token } = await issue();
    const forged = withHeader(token, { alg: 'RS256', typ: 'at+jwt', kid: 'made-up' }, token.split('.')[2]);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('KID_UNKNOWN'));
    expect(resolvedKids).toEqual(['made-up']);
  });

  test('other key claiming the kid', async () => {
    const other = await generateSigningKey();
    const { token } = await issueAccessToken({
      signer: { kid: key.kid, privateKey: await importPKCS8(other.privatePem, 'RS256') },
      issuer: ISSUER,
      subject: 'user-1',
      tenant: TENANT,
      audience: 'acme-app',
      scope: '',
      roles: [],
      lifetimeSeconds: 900,
      now: NOW,
    });
    expect(await rejection(verifyAccessToken(token, verifyOptions()))).toEqual(invalid('SIGNATURE'));
  });

  test('tampered payload', async () => {
    const { token } = await issue();
    const [header, , signature] = token.split('.');
    const payload = encodeJson({ ...decodePart(token, 1), roles: ['TenantAdmin'] });
    const forged = `${header}.${payload}.${signature}`;
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('SIGNATURE'));
  });

  test('other tenant tid', async () => {
    const { token } = await issue({ tenant: 'globex' });
    expect(await rejection(verifyAccessToken(token, verifyOptions()))).toEqual(invalid('TENANT'));
  });

  test('other issuer', async () => {
    const { token } = await issue({ issuer: 'https://tansu.test/identity/globex' });
    expect(await rejection(verifyAccessToken(token, verifyOptions()))).toEqual(invalid('ISSUER'));
  });

  test('other audience', async () => {
    const { token } = await issue();
    const options = verifyOptions({ audience: 'globex-app' });
    expect(await rejection(verifyAccessToken(token, options))).toEqual(invalid('AUDIENCE'));
  });

  test('expired', async () => {
    const { token } = await issue({ lifetimeSeconds: 60 });
    const later = new Date(NOW.getTime() + 66_000);
    expect(await rejection(verifyAccessToken(token, verifyOptions({ now: later })))).toEqual(invalid('EXPIRED'));
    // Within the default 5 seconds of clock tolerance the token is still accepted.
    const justAfter = new Date(NOW.getTime() + 64_000);
    await expect(verifyAccessToken(token, verifyOptions({ now: justAfter }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  test('not yet valid by nbf', async () => {
    const forged = await new SignJWT({ tid: TENANT, scope: '', roles: [] })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: key.kid })
      .setIssuer(ISSUER)
      .setSubject('user-1')
      .setAudience('acme-app')
      .setJti('j-1')
      .setIssuedAt(NOW_SECONDS)
      .setNotBefore(NOW_SECONDS + 600)
      .setExpirationTime(NOW_SECONDS + 900)
      .sign(privateKey);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('NOT_YET_VALID'));
  });

  test('issued in the future', async () => {
    const { token } = await issue({ now: new Date(NOW.getTime() + 600_000) });
    expect(await rejection(verifyAccessToken(token, verifyOptions()))).toEqual(invalid('NOT_YET_VALID'));
  });

  test('wrong typ header', async () => {
    for (const typ of ['JWT', undefined]) {
      const forged = await new SignJWT({ tid: TENANT, scope: '', roles: [] })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...(typ ? { typ } : {}) })
        .setIssuer(ISSUER)
        .setSubject('user-1')
        .setAudience('acme-app')
        .setJti('j-1')
        .setIssuedAt(NOW_SECONDS)
        .setExpirationTime(NOW_SECONDS + 900)
        .sign(privateKey);
      expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('TYPE'));
    }
  });

  test('missing tid claim', async () => {
    const forged = await new SignJWT({ scope: '', roles: [] })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: key.kid })
      .setIssuer(ISSUER)
      .setSubject('user-1')
      .setAudience('acme-app')
      .setJti('j-1')
      .setIssuedAt(NOW_SECONDS)
      .setExpirationTime(NOW_SECONDS + 900)
      .sign(privateKey);
    expect(await rejection(verifyAccessToken(forged, verifyOptions()))).toEqual(invalid('MALFORMED'));
  });

  test('malformed compact forms', async () => {
    const { token } = await issue();
    const [header, payload] = token.split('.');
    const malformed = [
      '',
      'abc',
      `${header}.${payload}`,
      `${token}.extra`,
      `.${payload}.sig`,
      `${encodeJson('string')}.${payload}.sig`,
      `${Buffer.from('{not json').toString('base64url')}.${payload}.sig`,
      `${header}.${payload}.`,
      `${header}..${token.split('.')[2]}`,
      `${header}.${payload}.${'A'.repeat(9000)}`,
      `${header}.${payload}.sig+nature`,
    ];
    for (const value of malformed) {
      expect([value.slice(0, 40), await rejection(verifyAccessToken(value, verifyOptions()))]).toEqual([
        value.slice(0, 40),
        invalid('MALFORMED'),
      ]);
    }
  });
});

describe('access tokens with the key store', () => {
  test('old key verifies during grace only', async () => {
    const database = await createMigratedDatabase('tenant');
    try {
      const store = createKeyStore(database.pool, {
        secretBox: createSecretBox(randomBytes(32)),
        associatedDataPrefix: `tenant:${TENANT}`,
        rotationGraceSeconds: () => 600,
      });
      await store.ensureKey();
      const { token } = await issueAccessToken({
        signer: await store.activeKey(),
        issuer: ISSUER,
        subject: 'user-1',
        tenant: TENANT,
        audience: 'acme-app',
        scope: 'openid',
        roles: ['User'],
        lifetimeSeconds: 3600,
      });
      await store.rotate();

      const at = (secondsFromNow: number) => {
        const now = new Date(Date.now() + secondsFromNow * 1000);
        return { issuer: ISSUER, tenant: TENANT, now, resolveKey: (kid: string) => store.verificationKey(kid, now) };
      };
      await expect(verifyAccessToken(token, at(0))).resolves.toMatchObject({ sub: 'user-1' });
      await expect(verifyAccessToken(token, at(590))).resolves.toMatchObject({ sub: 'user-1' });
      expect(await rejection(verifyAccessToken(token, at(610)))).toEqual(invalid('KID_UNKNOWN'));
    } finally {
      await database.drop();
    }
  });
});
