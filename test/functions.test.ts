import { request as httpRequest } from 'node:http';

import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';

import { Functions } from '#gen/tansu/functions/v1/functions_pb.js';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
const admins: Record<string, string> = {};
const users: Record<string, string> = {};

async function signIn(tenant: string, email: string, password: string): Promise<string> {
  const response = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, { body: { email, password } });
  if (response.status !== 200) throw new Error(`sign-in to ${tenant} failed: ${JSON.stringify(response.body)}`);
  return response.body.accessToken;
}

async function signUpUser(tenant: string): Promise<string> {
  const email = `user@${tenant}.test`;
  const password = 'a perfectly fine passphrase';
  await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signup`, { body: { email, password } });
  return signIn(tenant, email, password);
}

function deploy(tenant: string, name: string, body: Record<string, unknown>, token = admins[tenant]) {
  return rest('POST', `${server.baseUrl}/functions/api/${tenant}/functions/${name}/deploy`, { token, body });
}

function call(method: string, path: string, options: { token?: string; body?: unknown } = {}) {
  return rest(method, `${server.baseUrl}/functions/${path}`, options);
}

beforeAll(async () => {
  server = await startServer();
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  for (const tenant of ['acme', 'widgets']) {
    const credentials = await provisionTenant(server.baseUrl, platformToken, tenant);
    admins[tenant] = await signIn(tenant, credentials.adminEmail, credentials.adminPassword);
    users[tenant] = await signUpUser(tenant);
  }
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('functions over REST', () => {
  test('deploy, call, redeploy and roll back', async () => {
    const first = await deploy('acme', 'echo', {
      source: 'export default async (request: { method: string; path: string; query: object; body: unknown }) =>\n' +
        '  ({ version: 1, method: request.method, path: request.path, query: request.query, body: request.body });\n',
      limits: { timeoutMs: 1000, memoryMb: 64 },
    });
    expect(first.status).toBe(200);
    expect(first.body.version).toBe(1);
    expect(first.body.function.activeVersion).toBe(1);
    expect(first.body.function.limits).toEqual({ timeoutMs: 1000, memoryMb: 64 });

    const called = await call('POST', 'acme/echo/a/b?x=1', { token: users.acme, body: { hello: 'world' } });
    expect(called.status).toBe(200);
    expect(called.body).toEqual({ version: 1, method: 'POST', path: '/a/b', query: { x: '1' }, body: { hello: 'world' } });

    const second = await deploy('acme', 'echo', { source: 'export default () => new Response("v2", { status: 201 });' });
    expect(second.body.version).toBe(2);
    const afterRedeploy = await call('GET', 'acme/echo', { token: users.acme });
    expect(afterRedeploy.status).toBe(201);
    expect(afterRedeploy.body).toBe('v2');

    const rollback = await rest('POST', `${server.baseUrl}/functions/api/acme/functions/echo/versions/1/activate`, {
      token: admins.acme,
      body: {},
    });
    expect(rollback.status).toBe(200);
    expect(rollback.body.function.activeVersion).toBe(1);
    const afterRollback = await call('GET', 'acme/echo', { token: users.acme });
    expect(afterRollback.body.version).toBe(1);

    const versions = await rest('GET', `${server.baseUrl}/functions/api/acme/functions/echo/versions`, { token: admins.acme });
    expect(versions.body.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(versions.body.versions[1].active).toBe(true);
    expect(versions.body.versions[0].contentHash).toMatch(/^[0-9a-f]{64}$/);

    const listed = await rest('GET', `${server.baseUrl}/functions/api/acme/functions`, { token: admins.acme });
    expect(listed.body.functions.map((f: { name: string }) => f.name)).toContain('echo');
  });

  test('syntax error keeps the active version', async () => {
    await deploy('acme', 'stable', { source: 'export default () => "ok";' });
    const broken = await deploy('acme', 'stable', { source: 'export default () => {\n  return (1 +;\n};\n' });
    expect(broken.status).toBe(400);
    expect(broken.body.details[0].reason).toBe('FUNCTION_SYNTAX_ERROR');
    expect(broken.body.message).toContain('line 2');
    expect(broken.body.details[0].metadata.line).toBe('2');

    const still = await call('GET', 'acme/stable', { token: users.acme });
    expect(still.body).toBe('ok');
    const fn = await rest('GET', `${server.baseUrl}/functions/api/acme/functions/stable`, { token: admins.acme });
    expect(fn.body.function.activeVersion).toBe(1);
  });

  test('non-function default export is rejected', async () => {
    await deploy('acme', 'five', { source: 'export default () => "still v1";' });
    const five = await deploy('acme', 'five', { source: 'export default 5;' });
    expect(five.status).toBe(400);
    expect(five.body.details[0].reason).toBe('FUNCTION_INVALID_MODULE');
    expect(five.body.message).toContain('must be a function');
    expect(five.body.message).not.toContain('worker.ts');

    const still = await call('GET', 'acme/five', { token: users.acme });
    expect(still.body).toBe('still v1');
    const versions = await rest('GET', `${server.baseUrl}/functions/api/acme/functions/five/versions`, { token: admins.acme });
    expect(versions.body.versions.map((v: { version: number }) => v.version)).toEqual([1]);
  });

  test('errors carry no host stack frames', async () => {
    await deploy('acme', 'thrower', { source: 'export default () => { throw new Error("thrown here"); };' });
    const failed = await call('GET', 'acme/thrower', { token: users.acme });
    expect(failed.status).toBe(500);
    expect(failed.body.error).toMatch(/^Error: thrown here\n\s+at .*thrower@1\.js:\d+:/);
    expect(failed.body.error).not.toContain('<isolated-vm');

    const url = `${server.baseUrl}/functions/api/acme/functions/thrower/executions/${failed.body.executionId}`;
    const stored = await rest('GET', url, { token: admins.acme });
    expect(stored.body.execution.error).toBe(failed.body.error);
  });

  test('limits above the ceiling are rejected', async () => {
    const tooLarge = await deploy('acme', 'greedy', { source: 'export default () => 1;', limits: { memoryMb: 1024 } });
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.body.details[0].metadata.field).toBe('limits.memory_mb');
    const tooLong = await deploy('acme', 'greedy', { source: 'export default () => 1;', limits: { timeoutMs: 3_600_000 } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.details[0].metadata.field).toBe('limits.timeout_ms');
  });

  test('call without a token', async () => {
    await deploy('acme', 'private-fn', { source: 'export default () => "secret";' });
    const anonymous = await call('GET', 'acme/private-fn');
    expect(anonymous.status).toBe(401);
    const missing = await call('GET', 'acme/no-such-fn');
    expect(missing.status).toBe(401);

    await deploy('acme', 'public-fn', { source: 'export default () => "hello";', public: true });
    const open = await call('GET', 'acme/public-fn');
    expect(open.status).toBe(200);
    expect(open.body).toBe('hello');
  });

  test('executions are recorded newest first', async () => {
    await deploy('acme', 'logger', {
      source: 'export default (request, ctx) => { ctx.log.info("seen", { n: request.query.n }); ' +
        'if (request.query.fail) throw new Error("asked to fail"); return "ok"; };',
    });
    for (const n of ['1', '2', '3']) await call('GET', `acme/logger?n=${n}`, { token: users.acme });
    const failed = await call('GET', 'acme/logger?n=4&fail=1', { token: users.acme });
    expect(failed.status).toBe(500);
    expect(failed.body.status).toBe('error');

    const url = `${server.baseUrl}/functions/api/acme/functions/logger/executions`;
    const all = await rest('GET', `${url}?pageSize=2`, { token: admins.acme });
    expect(all.status).toBe(200);
    expect(all.body.executions).toHaveLength(2);
    expect(all.body.executions[0].status).toBe('error');
    expect(all.body.executions[0].error).toContain('asked to fail');
    expect(all.body.executions[1].logs[0].fields).toEqual({ n: '3' });
    expect(all.body.executions[1].triggerType).toBe('http');
    const next = await rest('GET', `${url}?pageSize=2&pageToken=${all.body.nextPageToken}`, { token: admins.acme });
    expect(next.body.executions.map((e: { logs: { fields: { n: string } }[] }) => e.logs[0]!.fields.n)).toEqual(['2', '1']);
    expect(next.body.nextPageToken ?? '').toBe('');

    const errors = await rest('GET', `${url}?status=error`, { token: admins.acme });
    expect(errors.body.executions).toHaveLength(1);
    const future = await rest('GET', `${url}?startTime=${new Date(Date.now() + 60_000).toISOString()}`, { token: admins.acme });
    expect(future.body.executions ?? []).toHaveLength(0);

    const one = await rest('GET', `${url}/${failed.headers.get('x-tansu-execution-id')}`, { token: admins.acme });
    expect(one.body.execution.status).toBe('error');
  });
});

/** Sends a GET with Node's lenient parser and returns the status and raw header names and values. */
function rawGet(url: string): Promise<{ status: number; headers: Array<[string, string]> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { insecureHTTPParser: true }, (response) => {
      const headers: Array<[string, string]> = [];
      for (let i = 0; i < response.rawHeaders.length; i += 2) {
        headers.push([response.rawHeaders[i]!.toLowerCase(), response.rawHeaders[i + 1]!]);
      }
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

describe('function response headers', () => {
  const hostile =
    'export default (request) => ({ status: Number(request.query.status), headers: {\n' +
    '  "set-cookie": "sid=evil; Domain=localhost", "content-type": "text/html",\n' +
    '  location: "https://evil.test/", "access-control-allow-origin": "*",\n' +
    '  "transfer-encoding": "chunked", "content-length": "1", connection: "close",\n' +
    '  "strict-transport-security": "max-age=31536000", "x-tansu-execution-id": "forged",\n' +
    '  "proxy-authenticate": "Basic", "x-custom": "kept", nel: "{}", "report-to": "{}",\n' +
    '  "reporting-endpoints": "a=\\"https://evil.test/\\"", "origin-agent-cluster": "?1",\n' +
    '  link: "</sw.js>; rel=serviceworker" },\n' +
    '  body: "<script>document.title = 1</script>" });';

  test('unsafe headers are dropped', async () => {
    await deploy('acme', 'hostile-headers', { source: hostile, public: true });
    const { status, headers } = await rawGet(`${server.baseUrl}/functions/acme/hostile-headers?status=200`);
    expect(status).toBe(200);
    const names = headers.map(([name]) => name);
    const withheld = [
      'set-cookie',
      'location',
      'strict-transport-security',
      'proxy-authenticate',
      'transfer-encoding',
      'nel',
      'report-to',
      'reporting-endpoints',
      'origin-agent-cluster',
      'link',
    ];
    for (const name of withheld) {
      expect(names).not.toContain(name);
    }
    const value = (name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);
    expect(value('content-length')).toEqual([String('<script>document.title = 1</script>'.length)]);
    expect(value('x-tansu-execution-id')).toHaveLength(1);
    expect(value('x-tansu-execution-id')[0]).not.toBe('forged');
    expect(value('content-type')).toEqual(['text/html']);
    expect(value('x-content-type-options')).toEqual(['nosniff']);
    expect(value('content-security-policy')).toEqual(['sandbox']);
    expect(value('access-control-allow-origin')).toEqual(['*']);
    expect(value('x-custom')).toEqual(['kept']);
  });

  test('location is kept on a redirect', async () => {
    await deploy('acme', 'hostile-headers', { source: hostile, public: true });
    const { status, headers } = await rawGet(`${server.baseUrl}/functions/acme/hostile-headers?status=302`);
    expect(status).toBe(302);
    expect(headers).toContainEqual(['location', 'https://evil.test/']);
    expect(headers.map(([name]) => name)).not.toContain('set-cookie');
  });

  test('own policy joins the sandbox', async () => {
    await deploy('acme', 'own-policy', {
      source: 'export default () => ({ status: 200, headers: { "content-security-policy": "default-src \'none\'" }, body: "x" });',
      public: true,
    });
    const { headers } = await rawGet(`${server.baseUrl}/functions/acme/own-policy`);
    expect(headers).toContainEqual(['content-security-policy', "default-src 'none', sandbox"]);
  });
});

describe('functions over gRPC', () => {
  test('invoke runs the active version', async () => {
    await deploy('acme', 'grpc-echo', { source: 'export default (request) => ({ got: request.body, path: request.path });' });
    const client = createClient(Functions, createGrpcTransport({ baseUrl: server.baseUrl }));
    const response = await client.invokeFunction(
      { tenant: 'acme', name: 'grpc-echo', path: '/x', body: { kind: { case: 'stringValue', value: 'hi' } } },
      { headers: { authorization: `Bearer ${users.acme}` } },
    );
    expect(response.status).toBe('succeeded');
    expect(response.httpStatus).toBe(200);
    expect(response.body?.kind.case).toBe('structValue');

    const versions = await client.listFunctionVersions(
      { tenant: 'acme', name: 'grpc-echo' },
      { headers: { authorization: `Bearer ${admins.acme}` } },
    );
    expect(versions.versions.map((v) => v.version)).toEqual([1]);
  });
});

describe('tenant isolation', () => {
  test('token of another tenant is rejected', async () => {
    await deploy('acme', 'guarded', { source: 'export default () => "acme only";' });
    const foreign = await call('GET', 'acme/guarded', { token: users.widgets });
    expect(foreign.status).toBe(403);
    const foreignAdmin = await deploy('acme', 'guarded', { source: 'export default () => 1;' }, admins.widgets);
    expect(foreignAdmin.status).toBe(403);
    const userDeploy = await deploy('acme', 'guarded', { source: 'export default () => 1;' }, users.acme);
    expect(userDeploy.status).toBe(403);
  });

  test('secrets stay in their tenant', async () => {
    const set = await rest('PUT', `${server.baseUrl}/functions/api/acme/secrets/API_KEY`, {
      token: admins.acme,
      body: { value: 'acme-secret-value' },
    });
    expect(set.status).toBe(200);
    expect(JSON.stringify(set.body)).not.toContain('acme-secret-value');
    const listed = await rest('GET', `${server.baseUrl}/functions/api/acme/secrets`, { token: admins.acme });
    expect(listed.body.secrets.map((s: { name: string }) => s.name)).toEqual(['API_KEY']);
    expect(JSON.stringify(listed.body)).not.toContain('acme-secret-value');

    const reader = 'export default async (request, ctx) => ({ key: await ctx.secrets.get("API_KEY") });';
    await deploy('acme', 'reader', { source: reader });
    await deploy('widgets', 'reader', { source: reader });
    const acme = await call('GET', 'acme/reader', { token: users.acme });
    expect(acme.body).toEqual({ key: 'acme-secret-value' });
    const widgets = await call('GET', 'widgets/reader', { token: users.widgets });
    expect(widgets.body).toEqual({ key: null });
    const widgetsList = await rest('GET', `${server.baseUrl}/functions/api/widgets/secrets`, { token: admins.widgets });
    expect(widgetsList.body.secrets ?? []).toEqual([]);
    const foreignList = await rest('GET', `${server.baseUrl}/functions/api/acme/secrets`, { token: admins.widgets });
    expect(foreignList.status).toBe(403);
  });
});

describe('limits', () => {
  const breaches: Array<[string, string, string]> = [
    ['then callback spin', 'export default async () => { Promise.resolve().then(() => { for (;;) {} }); return "done"; };', 'timeout'],
    ['awaited null spin', 'export default async () => { await null; for (;;) {} };', 'timeout'],
    ['sync and microtask spin', 'export default () => { Promise.resolve().then(() => { for (;;) {} }); for (;;) {} };', 'timeout'],
    ['self-queueing microtask', 'export default () => { const again = () => queueMicrotask(again); again(); return 1; };', 'timeout'],
    ['unbounded allocation', 'export default () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };', 'memory_limit'],
  ];

  test.each(breaches)('%s ends while others answer', async (_case, source, status) => {
    const name = `breach-${breaches.findIndex(([, s]) => s === source)}`;
    await deploy('widgets', name, { source, limits: { timeoutMs: 1000, memoryMb: 32 } });
    await deploy('acme', 'ping', { source: 'export default () => "pong";' });

    const breach = call('POST', `widgets/${name}`, { token: users.widgets });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const ping = await call('GET', 'acme/ping', { token: users.acme });
    const ready = await rest('GET', `${server.baseUrl}/health/ready`);
    expect(ping.status).toBe(200);
    expect(ping.body).toBe('pong');
    expect(ready.status).toBe(200);

    const ended = await breach;
    expect(ended.status).toBe(503);
    expect(ended.body.status).toBe(status);
  }, 20_000);

  test('rate limit answers 429', async () => {
    await deploy('acme', 'counted', { source: 'export default () => 1;' });
    let limited;
    for (let i = 0; i < 150 && !limited; i++) {
      const response = await call('GET', 'acme/counted', { token: users.acme });
      if (response.status === 429) limited = response;
    }
    expect(limited?.status).toBe(429);
    expect(limited?.body.details[0].reason).toBe('RATE_LIMITED');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('function route tenant id', () => {
  test('malformed tenant id is INVALID_ARGUMENT even with a token', async () => {
    const response = await fetch(`${server.baseUrl}/functions/BAD_ID/hello`, {
      headers: { authorization: `Bearer ${admins.acme}` },
    });
    expect(response.status).toBe(400);
    expect((await response.json()).details[0].reason).toBe('INVALID_TENANT_ID');
  });
});
