import { Code, ConnectError, createConnectRouter, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import fastify, { type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

import { file_google_rpc_error_details } from '#gen/google/rpc/error_details_pb.js';
import { file_grpc_health_v1_health } from '#gen/grpc/health/v1/health_pb.js';
import { registerDashboard } from '../../dashboard/serve.ts';
import { connectErrorFromDatabase, databaseErrorSummary } from '../core/database-errors.ts';
import { registerHttpInvocation } from '../functions/http-invocation.ts';
import { createHealthService } from '../gateway/health.ts';
import { dualProtocolServerFactory } from '../gateway/listen.ts';
import { reflectionRoutes } from '../gateway/reflection.ts';
import { contextValuesFor } from '../gateway/request-context.ts';
import { rejectNulCharacters } from '../gateway/reject-nul.ts';
import { registerRestTranscoding } from '../gateway/transcoder.ts';
import { registerInvitationPage } from '../identity/invitation-page.ts';
import { registerOAuthServer } from '../identity/oauth-server.ts';
import { registerSocialSignIn } from '../identity/social/routes.ts';
import type { Platform } from '../platform/platform.ts';
import { serviceModules } from './service-modules.ts';

/** Largest request body on any protocol: 6 MiB. */
const BODY_LIMIT_BYTES = 6 * 1024 * 1024;

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
    // error_details.proto lets grpcurl and buf curl decode the ErrorInfo and RetryInfo details.
    const reflected = [...modules.map((module) => module.file), file_grpc_health_v1_health, file_google_rpc_error_details];
    reflectionRoutes(reflected)(router);
    health.routes(router);
  };

  const app = fastify({
    serverFactory: dualProtocolServerFactory,
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
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
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    // Fastify's own client errors, such as a body over bodyLimit (413) or malformed JSON (400),
    // keep their status; the body has the google.rpc.Status shape of every other error.
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = status === 413 ? 8 : 3; // RESOURCE_EXHAUSTED, INVALID_ARGUMENT
      platform.logger.info({ url: request.url, status, reason: error.code }, 'request rejected');
      return reply.status(status).send({ code, message: error.message, details: [] });
    }
    platform.logger.error({ err: error, url: request.url }, 'unhandled error in a route');
    return reply.status(500).send({ code: 13, message: 'internal error', details: [] });
  });

  await app.register(fastifyConnectPlugin, {
    routes,
    contextValues: (request) => contextValuesFor(request.raw),
    interceptors: [logFailedCalls(platform), rejectNulCharacters()],
    // The same limit as Fastify's bodyLimit for REST, so every protocol takes the same sizes.
    readMaxBytes: BODY_LIMIT_BYTES,
    grpc: true,
    grpcWeb: true,
    connect: true,
  });

  const router = createConnectRouter({ interceptors: [logFailedCalls(platform), rejectNulCharacters()] });
  routes(router);
  registerRestTranscoding(app, {
    services: modules.map((module) => module.service),
    handlers: router.handlers,
    contextValues: (request) => contextValuesFor(request.raw),
  });
  registerOAuthServer(app, platform);
  registerInvitationPage(app, platform);
  registerSocialSignIn(app, platform);

  registerHttpInvocation(app, platform);
  registerDashboard(app, platform.logger);

  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    try {
      // Readiness must respond fast even when PostgreSQL hangs, so a load balancer can act.
      await Promise.race([
        platform.platformDb.query('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('readiness check timed out after 2 s')), 2_000).unref()),
      ]);
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
 * UNKNOWN, DATA_LOSS, or anything that is not a ConnectError) at error with the cause. The
 * caller gets a generic message instead of the cause.
 */
function logFailedCalls(platform: Platform): Interceptor {
  return (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      const connectError = connectErrorFromDatabase(error) ?? ConnectError.from(error);
      const fields = { service: request.service.typeName, method: request.method.name, code: Code[connectError.code] };
      if (connectError.code === Code.Unavailable && connectError.cause) {
        platform.logger.warn({ ...fields, err: databaseErrorSummary(connectError.cause) }, 'call failed: database unavailable');
        throw connectError;
      }
      if ([Code.Internal, Code.Unknown, Code.DataLoss].includes(connectError.code)) {
        platform.logger.error({ ...fields, err: connectError.cause ?? error }, 'call failed');
        throw new ConnectError('internal error; the server log has the details', connectError.code);
      }
      platform.logger.info({ ...fields, reason: connectError.rawMessage }, 'call rejected');
      throw connectError;
    }
  };
}
