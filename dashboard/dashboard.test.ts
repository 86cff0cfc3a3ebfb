import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

import { rest } from '../test/support/rest.ts';
import { startServer, type TestServer } from '../test/support/server.ts';

// Drives the dashboard in a real Chromium against a real server. The steps build on each other
// (a tenant, then its admin, then a function and its triggers), so the tests run in order.

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TENANT = 'dash-acme';
const USER_EMAIL = 'ada@dash-acme.test';
const USER_PASSWORD = 'a perfectly fine passphrase';

let server: TestServer;
let userDataDir: string;
let context: BrowserContext;
let page: Page;
const tenantAdmin = { email: '', password: '' };
const consoleProblems: string[] = [];
const requestPaths: string[] = [];

beforeAll(async () => {
  server = await startServer();
  userDataDir = mkdtempSync(join(tmpdir(), 'tansu-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused/.test(message.text())) consoleProblems.push(message.text());
  });
  page.on('pageerror', (error) => consoleProblems.push(error.message));
  page.on('request', (request) => requestPaths.push(`${request.method()} ${new URL(request.url()).pathname}`));
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await server?.stop();
});

async function signIn(kind: 'Platform admin' | 'Tenant admin', email: string, password: string, tenant?: string) {
  await page.goto(`${server.baseUrl}/dashboard/#/sign-in`);
  await page.getByLabel(kind).check();
  if (tenant) await page.getByLabel('Tenant', { exact: true }).fill(tenant);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('dashboard in Chromium', () => {
  test('page is served with a self-only policy', async () => {
    const response = await fetch(`${server.baseUrl}/dashboard/`);
    const policy = response.headers.get('content-security-policy') ?? '';
    expect(response.status).toBe(200);
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    expect(await response.text()).toContain('<script type="module" src="app.js"></script>');

    const script = await fetch(`${server.baseUrl}/dashboard/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
  });

  test('wrong password shows the error reason', async () => {
    await signIn('Platform admin', server.adminEmail, 'not the password');
    await expect(page.getByRole('alert').textContent()).resolves.toContain('INVALID_CREDENTIALS');
  });

  test('platform admin provisions a tenant', async () => {
    await signIn('Platform admin', server.adminEmail, server.adminPassword);
    await page.getByRole('heading', { name: 'Tenants', level: 1 }).waitFor();

    await page.getByLabel('Tenant id').fill(TENANT);
    await page.getByLabel('Display name').fill('Acme for the dashboard');
    await page.getByRole('button', { name: 'Provision tenant' }).click();
    const password = page.locator('.admin-password');
    await password.waitFor();
    tenantAdmin.email = (await page.locator('.admin-email').textContent()) ?? '';
    tenantAdmin.password = (await password.textContent()) ?? '';
    expect(tenantAdmin.email).toBe(`admin@${TENANT}.local`);
    expect(tenantAdmin.password.length).toBeGreaterThanOrEqual(12);
    await page.getByRole('link', { name: TENANT, exact: true }).waitFor();
  });

  test('platform admin deletes a tenant after confirming', async () => {
    await page.getByLabel('Tenant id').fill('dash-scratch');
    await page.getByRole('button', { name: 'Provision tenant' }).click();
    await page.getByRole('button', { name: 'Delete dash-scratch' }).click();
    await page.getByRole('button', { name: 'Confirm: delete dash-scratch and its data' }).click();
    await page.getByRole('link', { name: 'dash-scratch', exact: true }).waitFor({ state: 'detached' });

    const platformToken = await fetch(`${server.baseUrl}/identity/connect/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: server.adminEmail, password: server.adminPassword }),
    }).then((response) => response.json());
    const lookup = await rest('GET', `${server.baseUrl}/platform/api/tenants/dash-scratch`, { token: platformToken.access_token });
    expect(lookup.status).toBe(404);
  });

  test('tenant admin signs in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn('Tenant admin', tenantAdmin.email, tenantAdmin.password, TENANT);
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await page.getByText(tenantAdmin.email, { exact: true }).first().waitFor();
  });

  test('syntax error names line and column', async () => {
    await page.getByRole('link', { name: 'Functions' }).click();
    await page.getByLabel('New function name').fill('hello');
    await page.getByRole('button', { name: 'Open editor' }).click();
    await page.getByText('Not deployed yet.').waitFor();

    await page.getByLabel('Source').fill('export default async (request) => {\n  const x = ;\n  return x;\n};\n');
    await page.getByRole('button', { name: 'Deploy' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('FUNCTION_SYNTAX_ERROR');
    expect(await page.locator('.syntax-position').textContent()).toBe('At line 2, column 13.');
    expect(await page.locator('.caret').textContent()).toBe('Line 2, column 13');
  });

  test('good source deploys as version 1', async () => {
    await page.getByLabel('Source').fill(
      "export default async (request) => {\n  console.log('greeting', request.query.name);\n  return { hello: request.query.name ?? 'world' };\n};\n",
    );
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.getByText('Deployed version 1; it is now active.').waitFor();
    await page.getByRole('cell', { name: 'active', exact: true }).waitFor();
  });

  test('test console shows body and logs', async () => {
    await page.getByRole('link', { name: 'Test console' }).click();
    await page.getByLabel('Query (name=value per line)').fill('name=Ada');
    await page.getByRole('button', { name: 'Invoke' }).click();
    const body = page.locator('pre.body');
    await body.waitFor();
    expect(JSON.parse((await body.textContent()) ?? '')).toEqual({ hello: 'Ada' });
    expect(await page.locator('.http-status').textContent()).toBe('200');
    expect(await page.locator('.logs').textContent()).toContain('greeting Ada');
  });

  test('cron trigger shows a preview', async () => {
    await page.getByRole('link', { name: 'Triggers' }).click();
    await page.getByLabel('A cron schedule').check();
    await page.getByLabel('Cron expression').fill('0 9 * * 1-5');
    await page.getByLabel('Time zone').fill('Europe/Berlin');
    await page.getByText('In Europe/Berlin:').waitFor();
    const fireTimes = await page.locator('.fire-times li').allTextContents();
    expect(fireTimes).toHaveLength(5);
    for (const time of fireTimes) expect(time).toMatch(/T09:00:00\+0[12]:00$/);

    await page.getByRole('button', { name: 'Create trigger' }).click();
    await page.getByText('Created the cron trigger.').waitFor();
    await page.getByRole('cell', { name: '0 9 * * 1-5' }).waitFor();
  });

  test('bad cron shows the server error', async () => {
    await page.getByLabel('Cron expression').fill('61 * * * *');
    await page.locator('.preview [role=alert]').waitFor();
    expect(await page.locator('.preview').textContent()).toContain('minute field: 61 is out of range 0-59 INVALID_CRON');
  });

  test('event trigger runs on a new document', async () => {
    await page.getByLabel('Events').check();
    await page.getByLabel('Event pattern').fill('document.created');
    await page.getByRole('button', { name: 'Create trigger' }).click();
    await page.getByText('Created the event trigger.').waitFor();
    await page.getByRole('cell', { name: 'document.created' }).waitFor();

    const admin = await rest('POST', `${server.baseUrl}/identity/api/${TENANT}/auth/signin`, { body: tenantAdmin });
    const document = await rest('POST', `${server.baseUrl}/data/api/${TENANT}/collections/notes/documents`, {
      token: admin.body.accessToken,
      body: { data: { text: 'hello' } },
    });
    expect(document.status).toBe(200);

    await page.getByRole('link', { name: 'Executions' }).click();
    const eventRow = page.getByRole('cell', { name: /^event/ });
    const deadline = Date.now() + 20_000;
    while (!(await eventRow.count()) && Date.now() < deadline) {
      await page.waitForTimeout(500);
      await page.getByRole('button', { name: 'Show', exact: true }).click();
    }
    expect(await eventRow.count()).toBeGreaterThan(0);
  });

  test('user signed up over REST can be disabled', async () => {
    const signUp = await rest('POST', `${server.baseUrl}/identity/api/${TENANT}/auth/signup`, {
      body: { email: USER_EMAIL, password: USER_PASSWORD },
    });
    expect(signUp.status).toBe(200);

    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('searchbox', { name: 'Email' }).fill('ada@');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: USER_EMAIL, exact: true }).waitFor();
    await page.getByRole('button', { name: `Disable ${USER_EMAIL}` }).click();
    await page.getByRole('button', { name: `Enable ${USER_EMAIL}` }).waitFor();

    const signIn = await rest('POST', `${server.baseUrl}/identity/api/${TENANT}/auth/signin`, {
      body: { email: USER_EMAIL, password: USER_PASSWORD },
    });
    expect(signIn.status).toBe(401);
  });

  test('page made only Connect calls', () => {
    const posts = requestPaths.filter((entry) => entry.startsWith('POST '));
    expect(posts.length).toBeGreaterThan(0);
    for (const entry of posts) expect(entry).toMatch(/^POST \/tansu\.[a-z]+\.v1\.[A-Za-z]+\/[A-Za-z]+$/);
    expect(consoleProblems).toEqual([]);
  });
});
