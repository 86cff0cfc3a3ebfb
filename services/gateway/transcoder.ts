import {
  createRegistry,
  ScalarType,
  type DescField,
  type DescMessage,
  type DescService,
  type JsonObject,
  type JsonValue,
  type Registry,
} from '@bufbuild/protobuf';
import { Code, ConnectError, type ContextValues } from '@connectrpc/connect';
import type { UniversalHandler } from '@connectrpc/connect/protocol';
import { errorFromJsonBytes, trailerDemux } from '@connectrpc/connect/protocol-connect';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';

import { file_google_rpc_error_details } from '#gen/google/rpc/error_details_pb.js';

import { domainError, invalidArgument } from '../core/errors.ts';
import { collectHttpRules, type HttpRoute } from './http-rules.ts';
import { matchPathTemplate, parsePathTemplate, toFastifyPath, type PathTemplate } from './path-template.ts';
import { contextValuesFor, clientAddressKey } from './request-context.ts';
import { resolveFieldPath, setFieldFromText } from './rest-request.ts';
import { httpStatusFromCode, statusJsonFromError } from './rest-status.ts';

export { collectHttpRules, type HttpRoute } from './http-rules.ts';

/** Options of registerRestTranscoding. */
export interface RestTranscodingOptions {
  /** The services whose `google.api.http` rules become REST routes. */
  services: DescService[];
  /** The handlers of a Connect router with those services registered (`router.handlers`). */
  handlers: UniversalHandler[];
  /** Context values for each call; the client address is added when they leave it unset. */
  contextValues?: (request: FastifyRequest) => ContextValues;
}

/** A REST binding ready to serve: its template, field paths and the handler it calls. */
interface CompiledRoute {
  route: HttpRoute;
  template: PathTemplate;
  variableFields: Map<string, DescField[]>;
  bodyFields: DescField[] | undefined;
  responseField: DescField | undefined;
  handler: UniversalHandler;
}

/** A parsed request body, before it is matched against the request message. */
type RestBody =
  | { kind: 'json'; text: string }
  | { kind: 'form'; text: string }
  | { kind: 'unsupported'; contentType: string };

/** Request headers that describe the REST exchange itself and so are not passed to handlers. */
const UNFORWARDED_HEADERS = new Set([
  'accept-encoding',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Registers a Fastify route for every `google.api.http` binding of `options.services` that
 * calls the matching handler in-process, as a Connect unary JSON request, and a not-found
 * handler on `app` that replies with a `google.rpc.Status` body.
 *
 * Requests: path variables, then (for rules without `body: "*"`) query parameters, then the
 * body fill the request message. Bodies may be JSON or `application/x-www-form-urlencoded`,
 * whose fields are converted like query parameters. Unknown query and form parameters are
 * ignored, as OAuth 2.0 (RFC 6749, section 3.1) requires of its endpoints.
 * Responses: the protobuf JSON of the response (or of its `response_body` field) with status
 * 200, or a `google.rpc.Status` JSON with the HTTP status Envoy's transcoder uses for its code.
 * Headers and trailers the handler sets become response headers.
 *
 * Throws at registration when a rule names an unknown field, has an invalid path template, or
 * has no handler in `options.handlers`.
 */
export function registerRestTranscoding(app: FastifyInstance, options: RestTranscodingOptions): void {
  const registry = createRegistry(
    file_google_rpc_error_details,
    ...options.services.map((service) => service.file),
  );
  const groups = new Map<string, { verb: string; path: string; routes: CompiledRoute[] }>();
  for (const route of collectHttpRules(options.services)) {
    const compiled = compileRoute(route, options.handlers);
    if (compiled === undefined) continue;
    const path = toFastifyPath(compiled.template);
    const key = `${route.verb} ${path}`;
    const group = groups.get(key) ?? { verb: route.verb, path, routes: [] };
    group.routes.push(compiled);
    groups.set(key, group);
  }

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const error = domainError('NOT_FOUND', `no route matches ${request.method} ${path}`);
    return sendError(reply, error, registry);
  });

  app.register(async (scope) => {
    // Parse bodies here, so the Status reply can name what is wrong with them.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
      done(null, { kind: 'json', text: String(text) } satisfies RestBody);
    });
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, text, done) => done(null, { kind: 'form', text: String(text) } satisfies RestBody),
    );
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (request, _buffer, done) => {
      const contentType = request.headers['content-type'] ?? '';
      done(null, { kind: 'unsupported', contentType } satisfies RestBody);
    });

    for (const group of groups.values()) {
      scope.route({
        method: group.verb as HTTPMethods,
        url: group.path,
        handler: (request, reply) => transcode(request, reply, group.routes, options, registry),
      });
    }
  });
}

/** Resolves a binding's fields and handler. Returns undefined for streaming methods. */
function compileRoute(route: HttpRoute, handlers: UniversalHandler[]): CompiledRoute | undefined {
  const { method } = route;
  const name = `${route.service.typeName}.${method.name}`;
  // NOTE: only unary methods are transcoded. A server-streaming method with an http rule gets
  // no REST route (Envoy would stream a JSON array) until one needs it.
  if (method.methodKind !== 'unary') return undefined;

  const handler = handlers.find(
    (candidate) => candidate.service.typeName === route.service.typeName && candidate.method.name === method.name,
  );
  if (handler === undefined) {
    throw new Error(`no handler for ${name}, which has an http rule; register the service on the router`);
  }

  const template = parsePathTemplate(route.path);
  const fieldsOf = (message: DescMessage, dotted: string): DescField[] => {
    try {
      return resolveFieldPath(message, dotted.split('.'), dotted);
    } catch {
      throw new Error(`the http rule of ${name} names "${dotted}", which is not a field of ${message.typeName}`);
    }
  };
  const variableFields = new Map<string, DescField[]>();
  for (const variable of template.variables) {
    const dotted = variable.fieldPath.join('.');
    variableFields.set(dotted, fieldsOf(method.input, dotted));
  }
  const bodyFields = route.body === '' || route.body === '*' ? undefined : fieldsOf(method.input, route.body);
  const responseField = route.responseBody === '' ? undefined : fieldsOf(method.output, route.responseBody)[0];
  return { route, template, variableFields, bodyFields, responseField, handler };
}

/** Serves one REST request with the first binding of `candidates` whose template matches. */
async function transcode(
  request: FastifyRequest,
  reply: FastifyReply,
  candidates: CompiledRoute[],
  options: RestTranscodingOptions,
  registry: Registry,
): Promise<FastifyReply> {
  const url = request.raw.url ?? request.url;
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  const query = new URLSearchParams(queryStart < 0 ? '' : url.slice(queryStart + 1));

  let compiled: CompiledRoute | undefined;
  let variables: Map<string, string> | undefined;
  for (const candidate of candidates) {
    variables = matchPathTemplate(candidate.template, path);
    if (variables !== undefined) {
      compiled = candidate;
      break;
    }
  }
  if (compiled === undefined || variables === undefined) {
    const error = domainError('NOT_FOUND', `no route matches ${request.method} ${path}`);
    return sendError(reply, error, registry);
  }

  try {
    const input = buildRequestJson(compiled, variables, query, request.body as RestBody | undefined);
    return await callHandler(request, reply, compiled, input, options, registry);
  } catch (caught) {
    const error = ConnectError.from(caught);
    if (error.code === Code.Internal || error.code === Code.Unknown) {
      request.log.error({ err: caught, rpc: compiled.route.method.name }, 'REST transcoding failed');
    }
    return sendError(reply, error, registry);
  }
}

/** Builds the protobuf JSON of the request message from the path, query and body. */
function buildRequestJson(
  compiled: CompiledRoute,
  variables: Map<string, string>,
  query: URLSearchParams,
  body: RestBody | undefined,
): JsonObject {
  const { route } = compiled;
  const input = compiled.route.method.input;
  let json: JsonObject = {};

  if (body !== undefined && route.body === '') {
    // A rule without a body ignores one, as Envoy's transcoder does.
  } else if (body?.kind === 'unsupported') {
    throw invalidArgument(
      'body',
      `unsupported Content-Type "${body.contentType}"; send application/json or application/x-www-form-urlencoded`,
    );
  } else if (body?.kind === 'json' && body.text.trim() !== '') {
    const value = parseJsonBody(body.text);
    if (route.body === '*') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw invalidArgument('body', `the request body must be a JSON object, got ${describeJson(value)}`);
      }
      json = value;
    } else if (compiled.bodyFields !== undefined) {
      setJsonAt(json, compiled.bodyFields, value);
    }
  } else if (body?.kind === 'form') {
    const prefix = compiled.bodyFields ?? [];
    applyTextParameters(json, input, new URLSearchParams(body.text), prefix);
  }

  if (route.body !== '*') {
    const bound = new Set([...variables.keys(), route.body]);
    applyTextParameters(json, input, query, [], bound);
  }
  for (const [dotted, value] of variables) {
    const fields = compiled.variableFields.get(dotted) ?? [];
    setFieldFromText(json, fields, [value], dotted);
  }
  return json;
}

/**
 * Sets the fields that `parameters` name (dotted proto or JSON names) below `prefix`. Names
 * that match no field, and those in `skip`, are ignored.
 */
function applyTextParameters(
  json: JsonObject,
  input: DescMessage,
  parameters: URLSearchParams,
  prefix: DescField[],
  skip: Set<string> = new Set(),
): void {
  const start = prefix.at(-1);
  const message = start === undefined ? input : start.message;
  if (message === undefined) return;

  for (const name of new Set(parameters.keys())) {
    if (skip.has(name)) continue;
    let fields: DescField[];
    try {
      fields = resolveFieldPath(message, name.split('.'), name);
    } catch {
      continue;
    }
    setFieldFromText(json, [...prefix, ...fields], parameters.getAll(name), name);
  }
}

function parseJsonBody(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw invalidArgument('body', `the request body is not valid JSON: ${reason}`);
  }
}

function describeJson(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function setJsonAt(json: JsonObject, fields: DescField[], value: JsonValue): void {
  let object = json;
  for (const field of fields.slice(0, -1)) {
    const created: JsonObject = {};
    object[field.jsonName] = created;
    object = created;
  }
  object[fields[fields.length - 1].jsonName] = value;
}

/** Calls the Connect handler in-process and turns its reply into the REST reply. */
async function callHandler(
  request: FastifyRequest,
  reply: FastifyReply,
  compiled: CompiledRoute,
  input: JsonObject,
  options: RestTranscodingOptions,
  registry: Registry,
): Promise<FastifyReply> {
  const header = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(':') || UNFORWARDED_HEADERS.has(name) || name.startsWith('connect-')) continue;
    for (const item of Array.isArray(value) ? value : [value ?? '']) header.append(name, item);
  }
  const authority = request.headers[':authority'];
  if (!header.has('host') && typeof authority === 'string') header.set('host', authority);
  header.set('content-type', 'application/json');
  header.set('connect-protocol-version', '1');

  const contextValues = options.contextValues?.(request) ?? contextValuesFor(request.raw);
  if (contextValues.get(clientAddressKey) === '') contextValuesFor(request.raw, contextValues);

  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });

  const { handler } = compiled;
  const response = await handler({
    httpVersion: request.raw.httpVersion,
    url: `http://${header.get('host') ?? 'localhost'}${handler.requestPath}`,
    method: 'POST',
    header,
    body: input,
    signal: abort.signal,
    contextValues,
  });

  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body ?? []) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const [responseHeader, trailer] = trailerDemux(response.header ?? new Headers());
  copyHandlerHeaders(reply, responseHeader);
  copyHandlerHeaders(reply, trailer);

  if (response.status !== 200) {
    const fallback = new ConnectError(`the handler returned HTTP ${response.status}`, Code.Internal);
    return sendError(reply, errorFromJsonBytes(bytes, undefined, fallback), registry);
  }
  let output = bytes.toString('utf8');
  if (compiled.responseField !== undefined) {
    output = JSON.stringify(selectResponseField(JSON.parse(output) as JsonObject, compiled.responseField));
  }
  return reply.code(200).header('content-type', 'application/json').send(output);
}

/** Copies headers the handler set, leaving out those that describe the Connect exchange. */
function copyHandlerHeaders(reply: FastifyReply, headers: Headers): void {
  headers.forEach((value, name) => {
    if (UNFORWARDED_HEADERS.has(name) || name.startsWith('connect-') || name.startsWith('grpc-')) return;
    reply.header(name, value);
  });
}

/** Selects one response field's JSON, filling in the default that protobuf JSON leaves out. */
function selectResponseField(output: JsonObject, field: DescField): JsonValue {
  const value = output[field.jsonName];
  if (value !== undefined) return value;
  switch (field.fieldKind) {
    case 'list':
      return [];
    case 'map':
    case 'message':
      return {};
    case 'enum':
      return field.enum.values[0]?.name ?? 0;
    case 'scalar':
      return defaultScalarJson(field.scalar);
  }
}

function defaultScalarJson(scalar: ScalarType): JsonValue {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return '';
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return '0';
    default:
      return 0;
  }
}

function sendError(reply: FastifyReply, error: ConnectError, registry: Registry): FastifyReply {
  return reply
    .code(httpStatusFromCode(error.code))
    .header('content-type', 'application/json')
    .send(JSON.stringify(statusJsonFromError(error, registry)));
}
