import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { createClient, createConnectRouter, type ConnectRouter } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from '@connectrpc/connect-node';
import Fastify, { type FastifyInstance } from 'fastify';

import { file_grpc_health_v1_health, Health, HealthCheckResponse_ServingStatus } from '#gen/grpc/health/v1/health_pb.js';
import { ServerReflection as ServerReflectionV1alpha } from '#gen/grpc/reflection/v1alpha/reflection_pb.js';
import { file_tansu_identity_v1_auth, TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { file_tansu_platform_v1_tenants, Tenants } from '#gen/tansu/platform/v1/tenants_pb.js';

import { domainError } from '../core/errors.ts';
import { createHealthService } from './health.ts';
import { dualProtocolServerFactory } from './listen.ts';
import { reflectionRoutes } from './reflection.ts';
import { clientAddressKey, contextValuesFor } from './request-context.ts';
import { collectHttpRules, registerRestTranscoding } from './transcoder.ts';

const run = promisify(execFile);

/** Test implementations: each echoes what it received, so tests can see the transcoding. */
function tenantRoutes(router: ConnectRouter): void {
  router.service(Tenants, {
    provisionTenant(request, context) {
      if (request.id === 'busy') {
        context.responseHeader.set('Retry-After', '30');
        throw domainError('RATE_LIMITED', 'too many provisioning requests; retry later');
      }
      if (request.id === 'taken') {
        throw domainError('TENANT_ALREADY_EXISTS', 'tenant "taken" already exists', {
          metadata: { tenant: 'taken' },
        });
      }
      return { tenant: { id: request.id, displayName: request.displayName }, adminEmail: 'admin@example.test' };
    },
    getTenant(request, context) {
      if (request.id === 'missing') throw domainError('TENANT_NOT_FOUND', 'tenant "missing" not found');
      context.responseHeader.set('Cache-Control', 'max-age=60');
      return { tenant: { id: request.id, displayName: context.values.get(clientAddressKey) } };
    },
    listTenants(request) {
      return {
        tenants: [{ id: 'alpha' }, { id: 'beta' }],
        nextPageToken: `size=${request.pageSize};token=${request.pageToken}`,
      };
    },
    deleteTenant(request) {
      if (request.id === 'missing') throw domainError('TENANT_NOT_FOUND', 'tenant "missing" not found');
      return {};
    },
  });
  router.service(TenantAuth, {
    signIn(request, context) {
      return {
        accessToken: `${request.tenant}|${request.email}|${request.password}`,
        tokenType: context.requestHeader.get('authorization') ?? '',
        refreshToken: context.requestHeader.get('x-tansu-tenant') ?? '',
        user: { displayName: context.requestHeader.get('user-agent') ?? '' },
      };
    },
    getJwks(request) {
      return { keys: [{ kid: `${request.tenant}-key`, kty: 'RSA' }] };
    },
  });
}

/** Starts the gateway the way the server does: one port, Connect plugin, REST, reflection, health. */
async function startGateway(): Promise<{ app: FastifyInstance; baseUrl: string; address: string }> {
  const health = createHealthService();
  const routes = (router: ConnectRouter): void => {
    tenantRoutes(router);
    reflectionRoutes([file_tansu_platform_v1_tenants, file_tansu_identity_v1_auth, file_grpc_health_v1_health])(router);
    health.routes(router);
  };
  const app = Fastify({ serverFactory: dualProtocolServerFactory });
  await app.register(fastifyConnectPlugin, {
    routes,
    contextValues: (request) => contextValuesFor(request.raw),
  });
  const router = createConnectRouter();
  routes(router);
  registerRestTranscoding(app, { services: [Tenants, TenantAuth], handlers: router.handlers });
  await app.listen({ host: '127.0.0.1', port: 0 });
  health.setStatus('', 'SERVING');
  health.setStatus(Tenants.typeName, 'SERVING');

  const { port } = app.server.address() as { port: number };
  return { app, baseUrl: `http://127.0.0.1:${port}`, address: `127.0.0.1:${port}` };
}

async function findGrpcurl(): Promise<string> {
  for (const directory of (process.env.PATH ?? '').split(':')) {
    if (directory !== '' && existsSync(join(directory, 'grpcurl'))) return join(directory, 'grpcurl');
  }
  const { stdout } = await run('go', ['env', 'GOPATH']).catch(() => ({ stdout: '' }));
  const candidate = join(stdout.trim(), 'bin', 'grpcurl');
  if (stdout.trim() !== '' && existsSync(candidate)) return candidate;
  throw new Error(
    'grpcurl not found on PATH or in $(go env GOPATH)/bin; install it with ' +
      '`go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest`',
  );
}

describe('gateway', () => {
  let app: FastifyInstance;
  let baseUrl: string;
  let address: string;

  beforeAll(async () => {
    ({ app, baseUrl, address } = await startGateway());
  });
  afterAll(async () => {
    await app.close();
  });

  describe('REST transcoding', () => {
    test('GET fills path variable and forwards headers', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants/acme`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('max-age=60');
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const body = await response.json();
      expect(body.tenant.id).toBe('acme');
      expect(body.tenant.displayName).toBe('127.0.0.1');
    });

    test('GET fills fields from query parameters', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants?page_size=5&pageToken=abc&unknown=1`);
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.nextPageToken).toBe('size=5;token=abc');
      expect(body.tenants.map((tenant: { id: string }) => tenant.id)).toEqual(['alpha', 'beta']);
    });

    test('GET rejects invalid number in query', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants?page_size=many`);
      expect(response.status).toBe(400);
      const body = await response.json();
      expect(body.code).toBe(3);
    });

    test('GET with literal dotted segments', async () => {
      const response = await fetch(`${baseUrl}/identity/acme/.well-known/jwks.json`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ keys: [{ kid: 'acme-key', kty: 'RSA' }] });
    });

    test('POST with JSON body and path variable', async () => {
      const response = await fetch(`${baseUrl}/identity/api/acme/auth/signin`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer token-1',
          'x-tansu-tenant': 'acme',
          'user-agent': 'gateway-test/1.0',
        },
        body: JSON.stringify({ tenant: 'other', email: 'a@example.test', password: 'pw' }),
      });
      expect(response.status).toBe(200);
      const body = await response.json();
      // The path variable wins over the body field of the same name.
      expect(body.accessToken).toBe('acme|a@example.test|pw');
      expect(body.tokenType).toBe('Bearer token-1');
      expect(body.refreshToken).toBe('acme');
      expect(body.user.displayName).toBe('gateway-test/1.0');
    });

    test('POST with form-encoded body', async () => {
      const response = await fetch(`${baseUrl}/identity/api/acme/auth/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'b@example.test', password: 'p w&x', extra: 'ignored' }),
      });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.accessToken).toBe('acme|b@example.test|p w&x');
    });

    test('POST body "*" provisions tenant', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'new-one', display_name: 'New One' }),
      });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.tenant).toEqual({ id: 'new-one', displayName: 'New One' });
      expect(body.adminEmail).toBe('admin@example.test');
    });

    test('DELETE returns empty object', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants/acme`, { method: 'DELETE' });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({});
    });

    test('error maps to HTTP status and Status body', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants/missing`, { method: 'DELETE' });
      expect(response.status).toBe(404);
      const body = await response.json();
      expect(body).toEqual({
        code: 5,
        message: 'tenant "missing" not found',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'TENANT_NOT_FOUND',
            domain: 'tansu.dev',
          },
        ],
      });
    });

    test('error keeps metadata and response headers', async () => {
      const taken = await fetch(`${baseUrl}/platform/api/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'taken' }),
      });
      expect(taken.status).toBe(409);
      const takenBody = await taken.json();
      expect(takenBody.details[0].metadata).toEqual({ tenant: 'taken' });

      const busy = await fetch(`${baseUrl}/platform/api/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'busy' }),
      });
      expect(busy.status).toBe(429);
      expect(busy.headers.get('retry-after')).toBe('30');
      expect((await busy.json()).details[0].reason).toBe('RATE_LIMITED');
    });

    test('unimplemented method returns 501', async () => {
      const response = await fetch(`${baseUrl}/identity/api/acme/auth/me`);
      expect(response.status).toBe(501);
      expect((await response.json()).code).toBe(12);
    });

    test('unknown path returns 404 Status', async () => {
      const response = await fetch(`${baseUrl}/no/such/path`);
      expect(response.status).toBe(404);
      const body = await response.json();
      expect(body.code).toBe(5);
      expect(body.message).toBe('no route matches GET /no/such/path');
      expect(body.details[0]['@type']).toBe('type.googleapis.com/google.rpc.ErrorInfo');
    });

    test('malformed JSON returns 400', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"id": ',
      });
      expect(response.status).toBe(400);
      const body = await response.json();
      expect(body.code).toBe(3);
      expect(body.message).toMatch(/^the request body is not valid JSON: /);
      expect(body.details[0].metadata).toEqual({ field: 'body' });
    });

    test('JSON array body returns 400', async () => {
      const response = await fetch(`${baseUrl}/platform/api/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '[1]',
      });
      expect(response.status).toBe(400);
      expect((await response.json()).message).toBe('the request body must be a JSON object, got an array');
    });

    test('collectHttpRules lists every binding', () => {
      const routes = collectHttpRules([Tenants]);
      expect(routes.map((route) => `${route.verb} ${route.path} ${route.body}`)).toEqual([
        'POST /platform/api/tenants *',
        'GET /platform/api/tenants/{id} ',
        'GET /platform/api/tenants ',
        'DELETE /platform/api/tenants/{id} ',
      ]);
    });
  });

  describe('RPC protocols on the same port', () => {
    test('Connect JSON over HTTP/1.1', async () => {
      const response = await fetch(`${baseUrl}/tansu.platform.v1.Tenants/GetTenant`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'acme' }),
      });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.tenant).toEqual({ id: 'acme', displayName: '127.0.0.1' });
    });

    test('Connect client over HTTP/1.1', async () => {
      const client = createClient(Tenants, createConnectTransport({ baseUrl, httpVersion: '1.1' }));
      const response = await client.getTenant({ id: 'acme' });
      expect(response.tenant?.id).toBe('acme');
    });

    test('gRPC over h2c', async () => {
      const client = createClient(Tenants, createGrpcTransport({ baseUrl }));
      const response = await client.getTenant({ id: 'acme' });
      expect(response.tenant?.id).toBe('acme');
      expect(response.tenant?.displayName).toBe('127.0.0.1');
    });

    test('gRPC-Web over HTTP/1.1', async () => {
      const client = createClient(Tenants, createGrpcWebTransport({ baseUrl, httpVersion: '1.1' }));
      const response = await client.listTenants({ pageSize: 2 });
      expect(response.nextPageToken).toBe('size=2;token=');
    });

    test('health Check over gRPC', async () => {
      const client = createClient(Health, createGrpcTransport({ baseUrl }));
      const overall = await client.check({ service: '' });
      expect(overall.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const tenants = await client.check({ service: Tenants.typeName });
      expect(tenants.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      await expect(client.check({ service: 'no.such.Service' })).rejects.toMatchObject({ code: 5 });
    });
  });

  describe('reflection', () => {
    test('grpcurl lists services', async () => {
      const grpcurl = await findGrpcurl();
      const { stdout } = await run(grpcurl, ['-plaintext', address, 'list']);
      const services = stdout.trim().split('\n');
      expect(services).toEqual(expect.arrayContaining([
        'tansu.platform.v1.Tenants',
        'tansu.identity.v1.TenantAuth',
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
        'grpc.reflection.v1alpha.ServerReflection',
      ]));
    });

    test('grpcurl describes a method', async () => {
      const grpcurl = await findGrpcurl();
      const { stdout } = await run(grpcurl, ['-plaintext', address, 'describe', 'tansu.platform.v1.Tenants.GetTenant']);
      expect(stdout).toContain('rpc GetTenant ( .tansu.platform.v1.GetTenantRequest ) returns ( .tansu.platform.v1.GetTenantResponse )');
    });

    test('grpcurl describes a message with dependencies', async () => {
      const grpcurl = await findGrpcurl();
      const { stdout } = await run(grpcurl, ['-plaintext', address, 'describe', 'tansu.platform.v1.Tenant']);
      expect(stdout).toContain('.google.protobuf.Timestamp create_time');
    });

    test('grpcurl calls a method', async () => {
      const grpcurl = await findGrpcurl();
      const { stdout } = await run(grpcurl, [
        '-plaintext', '-d', '{"id":"acme"}', address, 'tansu.platform.v1.Tenants/GetTenant',
      ]);
      expect(JSON.parse(stdout).tenant.id).toBe('acme');
    });

    test('v1alpha lists services and files', async () => {
      const client = createClient(ServerReflectionV1alpha, createGrpcTransport({ baseUrl }));
      async function* requests() {
        yield { host: '', messageRequest: { case: 'listServices' as const, value: '' } };
        yield {
          host: '',
          messageRequest: { case: 'fileContainingSymbol' as const, value: 'tansu.identity.v1.TenantAuth.SignIn' },
        };
        yield { host: '', messageRequest: { case: 'fileByFilename' as const, value: 'no/such.proto' } };
      }
      const responses = [];
      for await (const response of client.serverReflectionInfo(requests())) responses.push(response);
      expect(responses).toHaveLength(3);

      const [list, file, missing] = responses.map((response) => response.messageResponse);
      expect(list.case).toBe('listServicesResponse');
      const names = list.case === 'listServicesResponse' ? list.value.service.map((service) => service.name) : [];
      expect(names).toContain('tansu.identity.v1.TenantAuth');
      expect(file.case).toBe('fileDescriptorResponse');
      const fileCount = file.case === 'fileDescriptorResponse' ? file.value.fileDescriptorProto.length : 0;
      // auth.proto plus its dependencies (google/api, user.proto, descriptor, timestamp...).
      expect(fileCount).toBeGreaterThan(1);
      expect(missing.case).toBe('errorResponse');
      expect(missing.case === 'errorResponse' ? missing.value.errorCode : 0).toBe(5);
    });

    test('buf curl calls through reflection', async () => {
      const { stdout } = await run('node_modules/.bin/buf', [
        'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--reflect',
        '--data', '{"id":"acme"}', `${baseUrl}/tansu.platform.v1.Tenants/GetTenant`,
      ]);
      expect(JSON.parse(stdout).tenant.id).toBe('acme');
    });
  });
});
