/**
 * JavaScript that runs inside each function's isolate before the function's module, through
 * `context.evalClosure`. It receives `$0`, a Reference to the worker's host-call bridge, `$1`,
 * the worker's log callback, and `$2`, the JSON of {@link SandboxSettings}. Those stay in this
 * closure, so function code cannot reach a worker object.
 *
 * It defines the globals `Response`, `console` and `queueMicrotask`, removes
 * `WebAssembly`, `SharedArrayBuffer` and `Atomics` (their memory and blocking waits escape the
 * heap and time accounting), and returns `install(handler)`. That returns
 * `run(requestJson, metaJson)`, which the worker calls once per execution and which resolves to
 * the JSON of an envelope: `{ ok: true, status, headers, kind, body }` with `kind` one of
 * `text`, `json` or `empty` and `body` the serialized text, or `{ ok: false, error }`. Both
 * carry `unsentLogs`, the log entries the sandbox counted but did not send to the worker.
 *
 * Function code shares this context and can replace built-ins such as `JSON.stringify`, so
 * the worker treats the envelope as untrusted input and validates it again.
 */
export const sandboxBootstrap = String.raw`
'use strict';
const hostCallReference = $0;
const sendLog = $1;
const settings = JSON.parse($2);
const { stringify, parse } = JSON;
const { keys, getPrototypeOf, freeze, defineProperty } = Object;
const ObjectPrototype = Object.prototype;
const responses = new WeakMap();

delete globalThis.WebAssembly;
delete globalThis.SharedArrayBuffer;
delete globalThis.Atomics;

function truncate(text, limit) {
  return text.length > limit ? text.slice(0, limit) + '…' : text;
}

function formatValue(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return String(value.stack || value);
  try {
    const json = stringify(value);
    return json === undefined ? String(value) : json;
  } catch {
    return String(value);
  }
}

// Returns the execution's log writer and the count of entries it did not send.
function createLogger(seq) {
  let sent = 0;
  let unsent = 0;
  function write(level, message, fields) {
    // The worker enforces the bounds; this only stops a loop from flooding it.
    if (sent > settings.maxLogEntries) {
      unsent += 1;
      return;
    }
    sent += 1;
    let fieldsJson = '';
    if (fields !== undefined && fields !== null) {
      try {
        fieldsJson = stringify(fields) || '';
      } catch {
        fieldsJson = stringify({ unserializable: true });
      }
    }
    const text = truncate(formatValue(message), settings.maxLogMessageChars);
    sendLog(seq, level, text, truncate(fieldsJson, settings.maxLogBytes));
  }
  return { write, unsent: () => unsent };
}

function createLog(write) {
  const log = (message, fields) => write('info', message, fields);
  log.debug = (message, fields) => write('debug', message, fields);
  log.info = (message, fields) => write('info', message, fields);
  log.warn = (message, fields) => write('warn', message, fields);
  log.error = (message, fields) => write('error', message, fields);
  return freeze(log);
}

// console writes to the execution that ran last, because the context outlives executions.
let consoleLogger = createLogger(0).write;
function consoleMethod(level) {
  return (...values) => consoleLogger(level, values.map(formatValue).join(' '));
}

globalThis.console = freeze({
  debug: consoleMethod('debug'),
  log: consoleMethod('info'),
  info: consoleMethod('info'),
  warn: consoleMethod('warn'),
  error: consoleMethod('error'),
});

globalThis.queueMicrotask = function queueMicrotask(callback) {
  if (typeof callback !== 'function') {
    throw new TypeError('queueMicrotask expects a function');
  }
  Promise.resolve().then(() => callback());
};

function callHost(seq, name, args) {
  let argsJson;
  try {
    argsJson = stringify(args);
  } catch {
    return Promise.reject(new TypeError('Arguments of ctx.' + name + ' must be JSON values'));
  }
  return new Promise((resolve, reject) => {
    hostCallReference
      .apply(undefined, [seq, name, argsJson], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
      })
      .then(
        (replyJson) => {
          const reply = parse(replyJson);
          // A reply for an execution that has ended leaves its promise pending for good.
          if (reply.stale) return;
          if (reply.ok) resolve(reply.value === undefined ? null : reply.value);
          else reject(new Error(reply.message));
        },
        () => reject(new Error('ctx.' + name + ' failed')),
      );
  });
}

function createContextObject(meta, write) {
  const ctx = {
    tenant: meta.tenant,
    execution: freeze({
      id: meta.executionId,
      functionName: meta.functionName,
      version: meta.version,
    }),
    log: createLog(write),
  };
  for (const name of meta.hostNames) {
    const path = name.split('.');
    let target = ctx;
    for (const segment of path.slice(0, -1)) {
      if (!Object.hasOwn(target, segment)) target[segment] = {};
      target = target[segment];
    }
    const method = path[path.length - 1];
    target[method] = (...args) => callHost(meta.seq, name, args);
  }
  return ctx;
}

class Response {
  constructor(body = null, init = {}) {
    const headers = {};
    const initHeaders = init && init.headers ? init.headers : {};
    for (const key of keys(initHeaders)) headers[key.toLowerCase()] = String(initHeaders[key]);
    let text = null;
    if (body !== null && body !== undefined) {
      text = typeof body === 'string' ? body : String(body);
      if (!('content-type' in headers)) headers['content-type'] = 'text/plain; charset=utf-8';
    }
    const status = init && init.status !== undefined ? init.status : 200;
    responses.set(this, { status, headers, text });
  }

  static json(value, init = {}) {
    const headers = { 'content-type': 'application/json' };
    const initHeaders = init && init.headers ? init.headers : {};
    for (const key of keys(initHeaders)) headers[key.toLowerCase()] = String(initHeaders[key]);
    return new Response(stringify(value === undefined ? null : value), { ...init, headers });
  }

  get status() {
    return responses.get(this).status;
  }

  get headers() {
    return { ...responses.get(this).headers };
  }
}
defineProperty(globalThis, 'Response', { value: Response, writable: true, configurable: true });

function isPlainObject(value) {
  if (value === null || typeof value !== 'object') return false;
  const prototype = getPrototypeOf(value);
  return prototype === ObjectPrototype || prototype === null;
}

function isResponseShape(value) {
  if (!isPlainObject(value) || typeof value.status !== 'number') return false;
  return keys(value).every((key) => key === 'status' || key === 'headers' || key === 'body');
}

function lowerCaseHeaders(headers) {
  const result = {};
  if (headers === undefined || headers === null) return result;
  if (!isPlainObject(headers)) throw new TypeError('Response headers must be a plain object');
  for (const key of keys(headers)) result[key.toLowerCase()] = String(headers[key]);
  return result;
}

function serializeJson(value) {
  const json = stringify(value);
  if (json === undefined) {
    throw new TypeError('The function returned a value that is not JSON: ' + typeof value);
  }
  return json;
}

function envelopeFor(value) {
  if (value === undefined || value === null) {
    return { ok: true, status: 204, headers: {}, kind: 'empty', body: '' };
  }
  const stored = typeof value === 'object' ? responses.get(value) : undefined;
  if (stored) {
    const kind = stored.text === null ? 'empty' : 'text';
    return { ok: true, status: stored.status, headers: stored.headers, kind, body: stored.text || '' };
  }
  if (typeof value === 'string') {
    const headers = { 'content-type': 'text/plain; charset=utf-8' };
    return { ok: true, status: 200, headers, kind: 'text', body: value };
  }
  if (isResponseShape(value)) {
    const headers = lowerCaseHeaders(value.headers);
    const body = value.body;
    if (body === undefined || body === null) {
      return { ok: true, status: value.status, headers, kind: 'empty', body: '' };
    }
    if (typeof body === 'string') {
      if (!('content-type' in headers)) headers['content-type'] = 'text/plain; charset=utf-8';
      return { ok: true, status: value.status, headers, kind: 'text', body };
    }
    if (!('content-type' in headers)) headers['content-type'] = 'application/json';
    return { ok: true, status: value.status, headers, kind: 'json', body: serializeJson(body) };
  }
  const headers = { 'content-type': 'application/json' };
  return { ok: true, status: 200, headers, kind: 'json', body: serializeJson(value) };
}

function describeError(error) {
  let text;
  try {
    text = error instanceof Error ? String(error.stack || error) : 'Uncaught ' + formatValue(error);
  } catch {
    text = 'Uncaught exception';
  }
  return truncate(text, settings.maxErrorChars);
}

function finish(value) {
  let envelope;
  try {
    envelope = envelopeFor(value);
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
  if (envelope.body.length > settings.maxResponseBytes) {
    const error = 'Response body is larger than ' + settings.maxResponseBytes + ' bytes';
    return { ok: false, error };
  }
  return envelope;
}

return function install(handler) {
  if (typeof handler !== 'function') {
    throw new TypeError('The default export of a function module must be a function');
  }
  return function run(requestJson, metaJson) {
    const meta = parse(metaJson);
    const logger = createLogger(meta.seq);
    consoleLogger = logger.write;
    const request = parse(requestJson);
    const ctx = createContextObject(meta, logger.write);
    return (async () => {
      let envelope;
      try {
        envelope = finish(await handler(request, ctx));
      } catch (error) {
        envelope = { ok: false, error: describeError(error) };
      }
      envelope.unsentLogs = logger.unsent();
      return stringify(envelope);
    })();
  };
};
`;

/** Bounds the bootstrap applies inside the sandbox before anything crosses to the worker. */
export interface SandboxSettings {
  maxLogEntries: number;
  maxLogBytes: number;
  maxLogMessageChars: number;
  maxErrorChars: number;
  maxResponseBytes: number;
}
