import { Code, ConnectError, createConnectRouter, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import type { DescFile, DescService } from '@bufbuild/protobuf';
import fastify, { type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

import { file_grpc_health_v1_health } from '#gen/grpc/health/v1/health_pb.js';
import { file_tansu_identity_v1_auth, TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { Clients, file_tansu_identity_v1_clients } from '#gen/tansu/identity/v1/clients_pb.js';
import { file_tansu_identity_v1_invitations, Invitations } from '#gen/tansu/identity/v1/invitations_pb.js';
import { file_tansu_identity_v1_oauth_providers, OAuthProviders } from '#gen/tansu/identity/v1/oauth_providers_pb.js';
import { file_tansu_platform_v1_platform_auth, PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { file_tansu_platform_v1_tenants, Tenants } from '#gen/tansu/platform/v1/tenants_pb.js';
import { createHealthService } from '../gateway/health.ts';
import { dualProtocolServerFactory } from '../gateway/listen.ts';
import { reflectionRoutes } from '../gateway/reflection.ts';
import { contextValuesFor } from '../gateway/request-context.ts';
import { registerRestTranscoding } from '../gateway/transcoder.ts';
import { clientsRoutes } from '../identity/clients-service.ts';
import { invitationsRoutes } from '../identity/invitations-service.ts';
import { oauthProvidersRoutes } from '../identity/oauth-providers-service.ts';
import { registerSocialSignIn } from '../identity/social/routes.ts';
import { registerOAuthServer } from '../identity/oauth-server.ts';
import { file_tansu_identity_v1_settings, Settings } from '#gen/tansu/identity/v1/settings_pb.js';
import { file_tansu_identity_v1_signing_keys, SigningKeys } from '#gen/tansu/identity/v1/signing_keys_pb.js';
import { file_tansu_identity_v1_users, Users } from '#gen/tansu/identity/v1/users_pb.js';
import { settingsRoutes } from '../identity/settings-service.ts';
import { signingKeysRoutes } from '../identity/signing-keys-service.ts';
import { tenantAuthRoutes } from '../identity/tenant-auth-service.ts';
import { usersRoutes } from '../identity/users-service.ts';
import { platformAuthRoutes } from '../platform/platform-auth-service.ts';
import type { Platform } from '../platform/platform.ts';
import { tenantsRoutes } from '../platform/tenants-service.ts';

/** A service the server exposes: its descriptor, its file (for reflection) and its routes. */
export interface ServiceModule {
  service: DescService;
  file: DescFile;
  routes: (router: ConnectRouter) => void;
}

/** The services of this server, in the order reflection lists them. */
export function serviceModules(platform: Platform): ServiceModule[] {
  return [
    { service: Tenants, file: file_tansu_platform_v1_tenants, routes: tenantsRoutes(platform) },
    { service: PlatformAuth, file: file_tansu_platform_v1_platform_auth, routes: platformAuthRoutes(platform) },
    { service: TenantAuth, file: file_tansu_identity_v1_auth, routes: tenantAuthRoutes(platform) },
    { service: Clients, file: file_tansu_identity_v1_clients, routes: clientsRoutes(platform) },
    { service: OAuthProviders, file: file_tansu_identity_v1_oauth_providers, routes: oauthProvidersRoutes(platform) },
    { service: Invitations, file: file_tansu_identity_v1_invitations, routes: invitationsRoutes(platform) },
    { service: Settings, file: file_tansu_identity_v1_settings, routes: settingsRoutes(platform) },
    { service: Users, file: file_tansu_identity_v1_users, routes: usersRoutes(platform) },
    { service: SigningKeys, file: file_tansu_identity_v1_signing_keys, routes: signingKeysRoutes(platform) },
  ];
}

/** The Fastify app with every protocol on it, plus a handle to flip gRPC health. */
export interface App {
  fastify: FastifyInstance;
  health: ReturnType<typeof createHealthService>;
}

/**
 * Builds the server: Connect, gRPC and gRPC-Web through connect-fastify, REST transcoded from
 * the `google.api.http` rules, gRPC reflection and health, `/health/live`, `/health/ready` and
 * Prometheus `/metrics`, on one listener that speaks HTTP/1.1 and cleartext HTTP/2.
 */
export async function buildApp(platform: Platform): Promise<App> {
  const modules = serviceModules(platform);
  const health = createHealthService();
  const routes = (router: ConnectRouter) => {
    for (const module of modules) module.routes(router);
    reflectionRoutes([...modules.map((module) => module.file), file_grpc_health_v1_health])(router);
    health.routes(router);
  };

  const app = fastify({
    serverFactory: dualProtocolServerFactory,
    logger: false,
    bodyLimit: 6 * 1024 * 1024,
  });

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const requests = new Counter({
    name: 'tansu_http_requests_total',
    help: 'HTTP requests by method and status code',
    labelNames: ['method', 'status'],
    registers: [metrics],
  });
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({ method: request.method, status: String(reply.statusCode) });
  });
  app.setErrorHandler((error, request, reply) => {
    platform.logger.error({ err: error, url: request.url }, 'unhandled error in a route');
    reply.status(500).send({ code: 13, message: 'internal error', details: [] });
  });

  await app.register(fastifyConnectPlugin, {
    routes,
    contextValues: (request) => contextValuesFor(request.raw),
    interceptors: [logFailedCalls(platform)],
    grpc: true,
    grpcWeb: true,
    connect: true,
  });

  const router = createConnectRouter({ interceptors: [logFailedCalls(platform)] });
  routes(router);
  registerRestTranscoding(app, {
    services: modules.map((module) => module.service),
    handlers: router.handlers,
    contextValues: (request) => contextValuesFor(request.raw),
  });
  registerOAuthServer(app, platform);
  registerSocialSignIn(app, platform);

  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    try {
      await platform.platformDb.query('SELECT 1');
      return { status: 'ok' };
    } catch (error) {
      platform.logger.warn({ err: error }, 'readiness check failed: platform database unreachable');
      return reply.status(503).send({ status: 'unavailable', reason: 'platform database unreachable' });
    }
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });

  health.setStatus('', 'SERVING');
  for (const module of modules) health.setStatus(module.service.typeName, 'SERVING');
  return { fastify: app, health };
}

/**
 * Logs every failed RPC once, at the edge: client errors at info, server errors (INTERNAL,
 * UNKNOWN, DATA_LOSS, or anything that is not a ConnectError) at error with the cause, which
 * the caller never sees.
 */
function logFailedCalls(platform: Platform): Interceptor {
  return (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      const connectError = ConnectError.from(error);
      const fields = { service: request.service.typeName, method: request.method.name, code: Code[connectError.code] };
      if ([Code.Internal, Code.Unknown, Code.DataLoss].includes(connectError.code)) {
        platform.logger.error({ ...fields, err: connectError.cause ?? error }, 'call failed');
        throw new ConnectError('internal error; the server log has the details', connectError.code);
      }
      platform.logger.info({ ...fields, reason: connectError.rawMessage }, 'call rejected');
      throw connectError;
    }
  };
}
