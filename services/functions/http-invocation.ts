import { createRegistry } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { ErrorInfoSchema, RetryInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import { httpStatusFromCode, statusJsonFromError } from '../gateway/rest-status.ts';
import type { Platform } from '../platform/platform.ts';
import { assertFunctionName } from './function-store.ts';
import { authorizeInvocation } from './invocation-auth.ts';
import { invokeFunction } from './invoke.ts';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

// Request headers withheld from the function: the caller's credentials and hop-by-hop headers.
const HIDDEN_HEADERS = new Set(['authorization', 'cookie', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

const errorRegistry = createRegistry(ErrorInfoSchema, RetryInfoSchema);

/**
 * Registers `GET|POST|PUT|PATCH|DELETE /functions/{tenant}/{name}[/{rest}]`, which passes the
 * method, path, query, headers and body to the function and returns its status, headers and
 * body. These are plain Fastify routes, not transcoded RPCs, because a function takes any
 * method and body. Static `/functions/api/...` routes win over these in Fastify's router, which
 * is why `api` is a reserved tenant id.
 */
export function registerHttpInvocation(app: FastifyInstance, platform: Platform): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    const handler = (request: FastifyRequest, reply: FastifyReply) => invokeOverHttp(platform, request, reply);
    scope.route({ method: [...METHODS], url: '/functions/:tenant/:name', handler });
    scope.route({ method: [...METHODS], url: '/functions/:tenant/:name/*', handler });
  });
}

async function invokeOverHttp(platform: Platform, request: FastifyRequest, reply: FastifyReply) {
  const { tenant: tenantId, name } = request.params as { tenant: string; name: string; '*'?: string };
  try {
    assertFunctionName(name);
    const headers = new Headers();
    for (const [key, value] of Object.entries(request.headers)) {
      if (typeof value === 'string') headers.set(key, value);
      else if (Array.isArray(value)) headers.set(key, value.join(', '));
    }
    const { tenant } = await authorizeInvocation(platform, headers, tenantId, name);

    const url = new URL(request.url, 'http://localhost');
    const rest = (request.params as { '*'?: string })['*'];
    const outcome = await invokeFunction(platform.functions, tenant, name, {
      request: {
        method: request.method,
        path: rest === undefined ? '/' : `/${rest}`,
        query: Object.fromEntries(url.searchParams),
        headers: visibleHeaders(headers),
        body: parseBody(request.body, headers.get('content-type') ?? ''),
      },
      trigger: { type: 'http', source: request.id },
    });

    reply.header('x-tansu-execution-id', outcome.executionId);
    if (outcome.status !== 'succeeded' || !outcome.response) {
      const status = outcome.status === 'error' ? 500 : 503;
      return reply
        .code(status)
        .header('content-type', 'application/json')
        .send(JSON.stringify({ status: outcome.status, error: outcome.error ?? '', executionId: outcome.executionId }));
    }
    const { response } = outcome;
    reply.code(response.status).headers(response.headers);
    if (response.body === null || response.body === undefined) return reply.send();
    return reply.send(typeof response.body === 'string' ? response.body : JSON.stringify(response.body));
  } catch (error) {
    const connectError = ConnectError.from(error);
    if (httpStatusFromCode(connectError.code) >= 500) {
      platform.logger.error({ err: connectError.cause ?? error, tenant: tenantId, function: name }, 'function call failed');
    }
    connectError.metadata.forEach((value, key) => void reply.header(key, value));
    return reply
      .code(httpStatusFromCode(connectError.code))
      .header('content-type', 'application/json')
      .send(JSON.stringify(statusJsonFromError(connectError, errorRegistry)));
  }
}

function visibleHeaders(headers: Headers): Record<string, string> {
  const visible: Record<string, string> = {};
  headers.forEach((value, key) => {
    if (!HIDDEN_HEADERS.has(key)) visible[key] = value;
  });
  return visible;
}

function parseBody(body: unknown, contentType: string): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) return null;
  const text = body.toString('utf8');
  if (/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    try {
      return JSON.parse(text);
    } catch {
      // NOTE: a body labelled JSON that does not parse reaches the function as its raw text.
      return text;
    }
  }
  return text;
}
