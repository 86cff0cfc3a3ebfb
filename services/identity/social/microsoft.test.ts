import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

import { checkMetadataIssuer, verifyMicrosoftIdToken } from './microsoft.ts';

const CONTOSO = '8eaef023-2b34-4da1-9baa-8bc8c9d6a490';
const FABRIKAM = '82229342-1101-4ab6-817b-70c0747630f3';
const TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
const CONTOSO_ISSUER = `https://login.microsoftonline.com/${CONTOSO}/v2.0`;
const CLIENT = '11111111-2222-3333-4444-555555555555';
const NONCE = 'nonce-of-this-sign-in';

let signingKey: CryptoKey;
let otherKey: CryptoKey;
let keys: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] });
});

function idToken(claims: JWTPayload, key: CryptoKey = signingKey) {
  return new SignJWT({ nonce: NONCE, tid: CONTOSO, sub: 'pairwise-sub', email: 'ada@contoso.test', name: 'Ada', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : CONTOSO_ISSUER)
    .setAudience(CLIENT)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

const expecting = (metadataIssuer: string) => ({ metadataIssuer, clientId: CLIENT, nonce: NONCE });

describe('verifyMicrosoftIdToken', () => {
  test('template issuer accepts the token of the tid directory', async () => {
    const identity = await verifyMicrosoftIdToken(await idToken({}), keys, expecting(TEMPLATE));
    expect(identity.tenantId).toBe(CONTOSO);
    expect(identity.subject).toBe('pairwise-sub');
    expect(identity.email).toBe('ada@contoso.test');
  });

  test('template issuer rejects an iss of another directory than tid', async () => {
    const token = await idToken({ iss: `https://login.microsoftonline.com/${FABRIKAM}/v2.0` });
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/issuer/);
  });

  test('template issuer rejects a tid that is not a GUID', async () => {
    const token = await idToken({ tid: 'common', iss: 'https://login.microsoftonline.com/common/v2.0' });
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/tid/);
  });

  test('template issuer rejects a token without tid', async () => {
    const token = await idToken({ tid: undefined });
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/tid/);
  });

  test('directory issuer is compared exactly', async () => {
    await expect(verifyMicrosoftIdToken(await idToken({}), keys, expecting(CONTOSO_ISSUER))).resolves.toMatchObject({
      tenantId: CONTOSO,
    });
    const fabrikam = await idToken({ tid: FABRIKAM, iss: `https://login.microsoftonline.com/${FABRIKAM}/v2.0` });
    await expect(verifyMicrosoftIdToken(fabrikam, keys, expecting(CONTOSO_ISSUER))).rejects.toThrow(/issuer/);
  });

  test('signature by another key is rejected', async () => {
    const token = await idToken({}, otherKey);
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/signature/);
  });

  test('wrong audience is rejected', async () => {
    const token = await new SignJWT({ nonce: NONCE, tid: CONTOSO, sub: 's' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(CONTOSO_ISSUER)
      .setAudience('another-client')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signingKey);
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/aud/);
  });

  test('several audiences need azp of this client', async () => {
    const sign = (azp: string) =>
      new SignJWT({ nonce: NONCE, tid: CONTOSO, sub: 's', azp })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(CONTOSO_ISSUER)
        .setAudience([CLIENT, 'another-client'])
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signingKey);
    await expect(verifyMicrosoftIdToken(await sign('another-client'), keys, expecting(TEMPLATE))).rejects.toThrow(/azp/);
    await expect(verifyMicrosoftIdToken(await sign(CLIENT), keys, expecting(TEMPLATE))).resolves.toBeDefined();
  });

  test('wrong nonce is rejected', async () => {
    const token = await idToken({ nonce: 'from-another-sign-in' });
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/nonce/);
  });

  test('expired token is rejected', async () => {
    const token = await new SignJWT({ nonce: NONCE, tid: CONTOSO, sub: 's' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(CONTOSO_ISSUER)
      .setAudience(CLIENT)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
      .sign(signingKey);
    await expect(verifyMicrosoftIdToken(token, keys, expecting(TEMPLATE))).rejects.toThrow(/exp/);
  });

  test('email counts as domain-verified only with xms_edov true', async () => {
    const cases: [unknown, boolean][] = [
      [true, true],
      [false, false],
      ['true', false],
      [1, false],
      [undefined, false],
    ];
    for (const [claim, verified] of cases) {
      const identity = await verifyMicrosoftIdToken(await idToken({ xms_edov: claim }), keys, expecting(TEMPLATE));
      expect({ claim, verified: identity.emailDomainVerified }).toEqual({ claim, verified });
    }
  });

  test('email_verified alone does not verify the email', async () => {
    const identity = await verifyMicrosoftIdToken(await idToken({ email_verified: true }), keys, expecting(TEMPLATE));
    expect(identity.emailDomainVerified).toBe(false);
  });
});

describe('checkMetadataIssuer', () => {
  test('multi-tenant authorities accept the template or a directory id', () => {
    expect(checkMetadataIssuer('https://login.microsoftonline.com/common/v2.0', TEMPLATE)).toBeUndefined();
    expect(checkMetadataIssuer('https://login.microsoftonline.com/organizations/v2.0', TEMPLATE)).toBeUndefined();
    const personal = 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0';
    expect(checkMetadataIssuer('https://login.microsoftonline.com/consumers/v2.0', personal)).toBeUndefined();
  });

  test('directory authority must come back unchanged', () => {
    expect(checkMetadataIssuer(CONTOSO_ISSUER, CONTOSO_ISSUER)).toBeUndefined();
    expect(checkMetadataIssuer(CONTOSO_ISSUER, TEMPLATE)).toMatch(/expected/);
    expect(checkMetadataIssuer(CONTOSO_ISSUER, `https://login.microsoftonline.com/${FABRIKAM}/v2.0`)).toMatch(/expected/);
  });

  test('another host or version is rejected', () => {
    expect(checkMetadataIssuer('https://login.microsoftonline.com/common/v2.0', 'https://evil.test/{tenantid}/v2.0')).toMatch(/expected/);
    expect(checkMetadataIssuer('https://login.microsoftonline.com/common/v2.0', `https://sts.windows.net/${CONTOSO}/`)).toMatch(/expected/);
    expect(checkMetadataIssuer('https://login.microsoftonline.com/common/v2.0', 'https://login.microsoftonline.com/someone/v2.0')).toMatch(
      /expected/,
    );
  });
});
