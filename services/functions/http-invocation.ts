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

// Response headers a function may not set. Hop-by-hop and framing headers belong to the
// server's connection, which frames the body itself. The rest act on the whole API origin, not
// on the one response: cookies, HSTS, Clear-Site-Data, Alt-Svc, the service worker scope, the
// origin's reporting and error-logging policies (NEL, Report-To, Reporting-Endpoints) and
// Origin-Agent-Cluster. `refresh` redirects like `location` but on any status, and `x-tansu-*`
// are the server's own. A `link` header that registers a service worker is dropped too.
const WITHHELD_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'te',
  'trailer',
  'set-cookie',
  'strict-transport-security',
  'clear-site-data',
  'alt-svc',
  'service-worker-allowed',
  'nel',
  'report-to',
  'reporting-endpoints',
  'origin-agent-cluster',
  'refresh',
]);

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
    // Node's parser already lowercases header names and trims values, so the plain object is
    // used as it is; a WHATWG Headers of every header cost a visible share of a warm call.
    const credentials = new Headers();
    const authorization = request.headers.authorization;
    if (authorization !== undefined) credentials.set('authorization', authorization);
    const { tenant } = await authorizeInvocation(platform, credentials, tenantId, name);

    const rest = (request.params as { '*'?: string })['*'];
    const headers = visibleHeaders(request.headers);
    const outcome = await invokeFunction(platform.functions, tenant, name, {
      request: {
        method: request.method,
        path: rest === undefined ? '/' : `/${rest}`,
        query: queryOf(request.url),
        headers,
        body: parseBody(request.body, headers['content-type'] ?? ''),
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
    reply.code(response.status).headers(responseHeaders(response.status, response.headers));
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

/**
 * Filters the headers a function returned before they go out on the API's origin: drops the
 * withheld ones, `proxy-*` and `x-tansu-*`, keeps `location` only on a 3xx status, and adds
 * `x-content-type-options: nosniff` and a `sandbox` content security policy. The sandbox
 * policy gives an HTML response an opaque origin with scripts, forms and popups off, so a
 * function page cannot act with the API origin's cookies or storage. A policy the function
 * set is kept next to it; browsers enforce both.
 */
export function responseHeaders(status: number, headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (WITHHELD_RESPONSE_HEADERS.has(name) || name.startsWith('proxy-') || name.startsWith('x-tansu-')) continue;
    if (name === 'location' && (status < 300 || status > 399)) continue;
    if (name === 'link' && /serviceworker/i.test(value)) continue;
    kept[name] = value;
  }
  kept['x-content-type-options'] = 'nosniff';
  const policy = kept['content-security-policy'];
  kept['content-security-policy'] = policy ? `${policy}, sandbox` : 'sandbox';
  return kept;
}

function visibleHeaders(headers: FastifyRequest['headers']): Record<string, string> {
  const visible: Record<string, string> = {};
  for (const key of Object.keys(headers).sort()) {
    if (HIDDEN_HEADERS.has(key)) continue;
    const value = headers[key];
    if (typeof value === 'string') visible[key] = value;
    else if (Array.isArray(value)) visible[key] = value.join(', ');
  }
  return visible;
}

/** Parses the query of a request target; a repeated name keeps its last value. */
function queryOf(target: string): Record<string, string> {
  const start = target.indexOf('?');
  if (start < 0) return {};
  const end = target.indexOf('#', start);
  return Object.fromEntries(new URLSearchParams(target.slice(start + 1, end < 0 ? undefined : end)));
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
