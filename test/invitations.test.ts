import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

import { tenantDatabaseName } from '../services/platform/tenant-id.ts';
import { urlForDatabase } from './support/database.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let smtp: SMTPServer;
let acmeAdmin: string;
const mails: { to: string; text: string }[] = [];

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, done) {
      let text = '';
      stream.on('data', (chunk) => (text += chunk));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((entry) => entry.address).join(','), text });
        done();
      });
    },
  });
  await new Promise<void>((done) => smtp.listen(0, '127.0.0.1', done));
  const port = (smtp.server.address() as AddressInfo).port;
  server = await startServer({ env: { TANSU_SMTP_URL: `smtp://127.0.0.1:${port}`, TANSU_MAIL_FROM: 'Acme <no-reply@acme.test>' } });
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const credentials = await provisionTenant(server.baseUrl, platformToken, 'acme');
  const signedIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  acmeAdmin = signedIn.body.accessToken;
});

afterAll(async () => {
  await server?.stop();
  await new Promise<void>((done) => smtp?.close(() => done()));
});

async function invite(email: string, role = 'TenantAdmin') {
  const before = mails.length;
  const created = await rest('POST', `${server.baseUrl}/identity/api/acme/invitations`, { token: acmeAdmin, body: { email, role } });
  expect(created.status).toBe(200);
  for (let wait = 0; wait < 50 && mails.length === before; wait++) await new Promise((done) => setTimeout(done, 100));
  const mail = mails[mails.length - 1];
  expect(mail.to).toBe(email);
  // Undoes quoted-printable soft line breaks and the encoded '=' before searching for the token.
  const body = mail.text.replace(/=\r?\n/g, '').replaceAll('=3D', '=');
  const token = /token=([A-Za-z0-9_-]{43})/.exec(body)![1];
  const link = /(https?:\/\/\S+\?token=[A-Za-z0-9_-]{43})/.exec(body)![1];
  return { invitation: created.body.invitation, token, link };
}

const accept = (token: string, password = 'a perfectly fine passphrase') =>
  rest('POST', `${server.baseUrl}/identity/api/acme/invitations/accept`, { body: { token, password, displayName: 'Invitee' } });

describe('invitations', () => {
  test('the mailed link creates the user with the invited role', async () => {
    const { invitation, token } = await invite('invitee@acme.test');
    expect(invitation.state).toBe('pending');
    const accepted = await accept(token);
    expect(accepted.status).toBe(200);
    const me = await rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token: accepted.body.accessToken });
    expect(me.body.user.roles).toContain('TenantAdmin');
    const signedIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'invitee@acme.test', password: 'a perfectly fine passphrase' },
    });
    expect(signedIn.status).toBe(200);
  });

  test('a used link is rejected', async () => {
    const { token } = await invite('twice@acme.test', 'User');
    expect((await accept(token)).status).toBe(200);
    const again = await accept(token, 'another fine passphrase');
    expect(again.status).toBe(400);
    expect(again.body.details[0].reason).toBe('INVITATION_NOT_USABLE');
  });

  test('an expired link is rejected', async () => {
    const { invitation, token } = await invite('late@acme.test', 'User');
    const client = new pg.Client({ connectionString: urlForDatabase(tenantDatabaseName(server.databasePrefix, 'acme')) });
    await client.connect();
    await client.query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1", [invitation.invitationId]);
    await client.end();
    const late = await accept(token);
    expect(late.status).toBe(400);
    expect(late.body.details[0].reason).toBe('INVITATION_NOT_USABLE');
  });

  test('a revoked link is rejected', async () => {
    const { invitation, token } = await invite('revoked@acme.test', 'User');
    const revoked = await rest('DELETE', `${server.baseUrl}/identity/api/acme/invitations/${invitation.invitationId}`, { token: acmeAdmin });
    expect(revoked.status).toBe(200);
    expect((await accept(token)).status).toBe(400);
  });

  test('a regular user cannot invite', async () => {
    const signedUp = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'regular@acme.test', password: 'a perfectly fine passphrase' },
    });
    const denied = await rest('POST', `${server.baseUrl}/identity/api/acme/invitations`, {
      token: signedUp.body.accessToken,
      body: { email: 'x@acme.test' },
    });
    expect(denied.status).toBe(403);
  });
});

describe('invitation page', () => {
  const postForm = (link: string, fields: Record<string, string>) =>
    fetch(new URL('accept', link), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });

  test('mailed link page accepts the invitation', async () => {
    const { link, token } = await invite('page@acme.test', 'User');
    expect(new URL(link).pathname).toBe('/identity/acme/invitations/accept');
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('page@acme.test');
    expect(html).toContain('<form method="post" action="accept">');
    expect(html).toContain(`name="token" value="${token}"`);
    expect(html).toContain('<label for="password">');

    const accepted = await postForm(link, {
      token,
      display_name: 'Page <Person>',
      password: 'a perfectly fine passphrase',
      password_confirmation: 'a perfectly fine passphrase',
    });
    expect(accepted.status).toBe(200);
    expect(await accepted.text()).toContain('You can sign in now.');

    const signedIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'page@acme.test', password: 'a perfectly fine passphrase' },
    });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user.displayName).toBe('Page <Person>');
    expect((await fetch(link)).status).toBe(410);
  });

  test('weak or mismatched password shows the form again', async () => {
    const { link, token } = await invite('weak@acme.test', 'User');
    const weak = await postForm(link, { token, password: 'short', password_confirmation: 'short' });
    expect(weak.status).toBe(400);
    const weakHtml = await weak.text();
    expect(weakHtml).toContain('role="alert"');
    expect(weakHtml).toContain('<form method="post"');

    const mismatched = await postForm(link, {
      token,
      password: 'a perfectly fine passphrase',
      password_confirmation: 'another fine passphrase',
    });
    expect(mismatched.status).toBe(400);
    expect(await mismatched.text()).toContain('The two passwords differ.');
    expect((await fetch(link)).status).toBe(200);
  });

  test('unknown token gets no form', async () => {
    const page = await fetch(`${server.baseUrl}/identity/acme/invitations/accept?token=%3Cscript%3E`);
    expect(page.status).toBe(410);
    const html = await page.text();
    expect(html).not.toContain('<form');
    expect(html).not.toContain('<script>');
    const posted = await postForm(`${server.baseUrl}/identity/acme/invitations/accept`, {
      token: 'not-a-token',
      password: 'a perfectly fine passphrase',
      password_confirmation: 'a perfectly fine passphrase',
    });
    expect(posted.status).toBe(410);
  });

  test('invited email is escaped on the page', async () => {
    const { link } = await invite("o'brien&co@acme.test", 'User');
    const html = await (await fetch(link)).text();
    expect(html).toContain('o&#39;brien&amp;co@acme.test');
    expect(html).not.toContain("o'brien&co@acme.test");
  });
});
