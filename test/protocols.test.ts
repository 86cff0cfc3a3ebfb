import http from 'node:http';

import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';

import { TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';
import { grpcurl } from './support/tools.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
  const token = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  await provisionTenant(server.baseUrl, token, 'acme');
});
afterAll(async () => {
  await server?.stop();
});

const transports = {
  connect: () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' }),
  grpc: () => createGrpcTransport({ baseUrl: server.baseUrl }),
  grpcWeb: () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' }),
};

describe.each(Object.keys(transports) as Array<keyof typeof transports>)('TenantAuth over %s', (protocol) => {
  const client = () => createClient(TenantAuth, transports[protocol]());
  const email = `${protocol.toLowerCase()}@example.com`;

  test('signs up, signs in and reads the current user', async () => {
    const signedUp = await client().signUp({ tenant: 'acme', email, password: 'one good passphrase' });
    expect(signedUp.tokenType).toBe('Bearer');
    expect(signedUp.expiresIn).toBe(3600n);
    const signedIn = await client().signIn({ tenant: 'acme', email, password: 'one good passphrase' });
    expect(signedIn.user?.id).toBe(signedUp.user?.id);
    const me = await client().getCurrentUser(
      { tenant: 'acme' },
      { headers: { authorization: `Bearer ${signedIn.accessToken}` } },
    );
    expect(me.user?.email).toBe(email);
  });

  test('X-Tansu-Tenant header names the tenant', async () => {
    const signedIn = await client().signIn(
      { email, password: 'one good passphrase' },
      { headers: { 'x-tansu-tenant': 'acme' } },
    );
    expect(signedIn.accessToken).not.toBe('');
    const mismatch = client().signIn({ tenant: 'acme', email, password: 'x' }, { headers: { 'x-tansu-tenant': 'other' } });
    await expect(mismatch).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  test.each([
    ['unknown tenant', { tenant: 'nope', email: 'a@b.example', password: 'whatever1' }, Code.NotFound],
    ['bad tenant id', { tenant: 'NO', email: 'a@b.example', password: 'whatever1' }, Code.InvalidArgument],
    ['wrong password', { tenant: 'acme', email: 'admin@acme.local', password: 'wrong-password' }, Code.Unauthenticated],
  ])('%s maps to its code', async (_name, request, code) => {
    const error = await client().signIn(request).then(
      () => undefined,
      (reason) => ConnectError.from(reason),
    );
    expect(error?.code).toBe(code);
  });
});

describe('the same errors over REST', () => {
  test.each([
    ['unknown tenant', 'nope', { email: 'a@b.example', password: 'whatever1' }, 404, 5],
    ['bad tenant id', 'NO', { email: 'a@b.example', password: 'whatever1' }, 400, 3],
    ['wrong password', 'acme', { email: 'admin@acme.local', password: 'wrong-password' }, 401, 16],
    ['missing password', 'acme', { email: 'admin@acme.local' }, 400, 3],
  ])('%s is HTTP %s', async (_name, tenant, body, status, grpcCode) => {
    const response = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, { body });
    expect(response.status).toBe(status);
    expect(response.body.code).toBe(grpcCode);
    expect(typeof response.body.message).toBe('string');
    expect(response.body.details[0]['@type']).toBe('type.googleapis.com/google.rpc.ErrorInfo');
  });

  test('malformed JSON is 400 with a message', async () => {
    const response = await fetch(`${server.baseUrl}/identity/api/acme/auth/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"email": ',
    });
    expect(response.status).toBe(400);
  });

  test('weak password is rejected with the reason', async () => {
    const response = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'weak@example.com', password: 'password' },
    });
    expect(response.status).toBe(400);
    expect(response.body.details[0].reason).toBe('WEAK_PASSWORD');
    expect(response.body.message).toMatch(/common/i);
  });
});

describe('grpcurl', () => {
  test('lists services through reflection', () => {
    const result = grpcurl(['-plaintext', server.address, 'list']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('tansu.identity.v1.TenantAuth');
    expect(result.stdout).toContain('tansu.platform.v1.Tenants');
    expect(result.stdout).toContain('grpc.health.v1.Health');
  });

  test('signs in and reports errors with gRPC codes', () => {
    const ok = grpcurl([
      '-plaintext',
      '-d',
      JSON.stringify({ tenant: 'acme', email: 'connect@example.com', password: 'one good passphrase' }),
      server.address,
      'tansu.identity.v1.TenantAuth/SignIn',
    ]);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).tokenType).toBe('Bearer');

    const bad = grpcurl([
      '-plaintext',
      '-d',
      JSON.stringify({ tenant: 'acme', email: 'connect@example.com', password: 'nope-nope' }),
      server.address,
      'tansu.identity.v1.TenantAuth/SignIn',
    ]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('Code: Unauthenticated');
  });

  test('health check answers SERVING', () => {
    const result = grpcurl(['-plaintext', server.address, 'grpc.health.v1.Health/Check']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).status).toBe('SERVING');
  });
});

describe('HTTP health endpoints', () => {
  test('live and ready answer 200', async () => {
    expect((await fetch(`${server.baseUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${server.baseUrl}/health/ready`)).status).toBe(200);
  });

  test('metrics are in Prometheus format', async () => {
    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(text).toContain('tansu_http_requests_total');
  });
});

describe('NUL characters in text', () => {
  test.each([
    ['signup display name', '/identity/api/acme/auth/signup', { email: 'nul@example.com', password: 'good passphrase 1', displayName: 'a\u0000b' }, 'display_name'],
    ['signin email', '/identity/api/acme/auth/signin', { email: 'a\u0000@example.com', password: 'whatever1' }, 'email'],
  ])('%s is INVALID_ARGUMENT naming the field', async (_name, path, body, field) => {
    const response = await rest('POST', `${server.baseUrl}${path}`, { body });
    expect(response.status).toBe(400);
    expect(response.body.details[0].metadata.field).toBe(field);
    expect(response.body.message).toContain('NUL');
  });

  test('over gRPC too', async () => {
    const client = createClient(TenantAuth, transports.grpc());
    const error = await client
      .signUp({ tenant: 'acme', email: 'nul2@example.com', password: 'good passphrase 1', displayName: '\u0000' })
      .then(() => undefined, (reason) => ConnectError.from(reason));
    expect(error?.code).toBe(Code.InvalidArgument);
  });
});

describe('oversized bodies', () => {
  const body = JSON.stringify({ email: 'big@example.com', password: 'x'.repeat(7 * 1024 * 1024) });

  // Announces the whole body but sends only its first kilobyte: the server must reject the
  // request from its Content-Length alone. Sending all of it races the server closing the
  // connection after its answer, which the client then reports as a write error.
  const post = (path: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(`${server.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      request.on('response', (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text });
          request.destroy();
        });
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
      });
      request.write(body.slice(0, 1024));
      setTimeout(() => {
        request.destroy();
        reject(new Error('no answer within 10 s: the server waits for the body instead of checking Content-Length'));
      }, 10_000).unref();
    });

  test('REST answers 413', async () => {
    const { status, text } = await post('/identity/api/acme/auth/signin');
    expect(status).toBe(413);
    expect(JSON.parse(text).code).toBe(8);
  });

  test('Connect rejects the same size', async () => {
    const { status, text } = await post('/tansu.identity.v1.TenantAuth/SignIn');
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(text).toContain('resource_exhausted');
  });
});
