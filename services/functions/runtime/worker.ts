// Piscina worker: runs function executions in isolated-vm isolates. The isolates run on
// isolated-vm's own threads, so this thread's event loop stays free while a function spins,
// and the watchdogs here can dispose a runaway isolate at any point, microtasks included.
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';

import ivm from 'isolated-vm';
import { pino } from 'pino';

import { createIsolateCache } from './isolate-cache.ts';
import { sandboxBootstrap, type SandboxSettings } from './sandbox-bootstrap.ts';
import type {
  ExecutionLog,
  ExecutionResult,
  ExecutionStatus,
  FunctionRequest,
  FunctionResponse,
  JsonValue,
} from './types.ts';

/** Bounds and cache size a worker receives as piscina `workerData`. */
export interface WorkerSettings extends SandboxSettings {
  maxIdleIsolates: number;
  /** Heap the idle isolates of this worker may hold together, in bytes. */
  maxIdleHeapBytes: number;
  /** Heap above which an isolate is disposed after its execution instead of kept, in bytes. */
  maxReusedHeapBytes: number;
  idleIsolateTimeoutMs: number;
  maxHostCallBytes: number;
  /** Name of the BroadcastChannel that carries host calls and their replies. */
  hostChannel: string;
}

/** A request for the counts of this worker's idle isolate cache. */
export interface StatsTask {
  stats: true;
}

/** Idle isolates of one worker and the heap they hold. */
export interface IdleIsolateStats {
  idleIsolates: number;
  idleHeapBytes: number;
}

/** One execution as the main thread sends it to a worker. */
export interface WorkerTask {
  tenant: string;
  functionName: string;
  version: number;
  executionId: string;
  code: string;
  request: FunctionRequest;
  limits: { timeoutMs: number; cpuMs: number; memoryMb: number };
  hostNames: string[];
  /** Names this execution's host calls on the host channel, see {@link HostCallMessage}. */
  hostToken: number;
}

/** A request to load a version into an idle isolate ahead of its first execution. */
export interface PrepareTask {
  prepare: true;
  tenant: string;
  functionName: string;
  version: number;
  code: string;
  limits: { timeoutMs: number; cpuMs: number; memoryMb: number };
}

/** A request to load a version into a fresh isolate, report why it cannot run, and discard it. */
export interface CheckTask {
  check: true;
  tenant: string;
  functionName: string;
  version: number;
  code: string;
  limits: { timeoutMs: number; cpuMs: number; memoryMb: number };
}

/** Why a module cannot run: its top-level error or the limit it breached while loading. */
export interface LoadFailure {
  status: ExecutionStatus;
  error: string;
}

/**
 * A host call request from a worker to the main thread, on the host channel. `token` names the
 * execution on the main thread; `worker` and `id` name the call, so that only the calling
 * worker takes the reply.
 */
export interface HostCallMessage {
  token: number;
  worker: number;
  id: number;
  name: string;
  argsJson: string;
}

/** The main thread's reply to a {@link HostCallMessage}. */
export type HostCallReply =
  | { worker: number; id: number; ok: true; valueJson: string }
  | { worker: number; id: number; ok: false; message: string };

type Breach = 'timeout' | 'cpu_limit';

interface RunningExecution {
  seq: number;
  hostToken: number;
  hostCalls: Map<number, (replyJson: string) => void>;
  logs: ExecutionLog[];
  logBytes: number;
  droppedLogs: number;
  ended: boolean;
}

interface WarmIsolate {
  key: string;
  code: string;
  heapBytes: number;
  isolate: ivm.Isolate;
  run: ivm.Reference<(requestJson: string, metaJson: string) => Promise<string>>;
  execution: RunningExecution | undefined;
  dispose(): void;
}

const settings = workerData as WorkerSettings;
const log = pino({ name: 'functions-worker' });
const cache = createIsolateCache<WarmIsolate>({
  maxIdle: settings.maxIdleIsolates,
  maxHeapBytes: settings.maxIdleHeapBytes,
  idleTimeoutMs: settings.idleIsolateTimeoutMs,
});
// Sweeps at least twice per timeout, and unref'd, so it never keeps the worker alive.
setInterval(() => cache.sweep(), Math.max(20, Math.min(settings.idleIsolateTimeoutMs / 2, 10_000))).unref();
const staleReply = JSON.stringify({ stale: true });
const logLevels = new Set(['debug', 'info', 'warn', 'error']);
let nextSeq = 1;
let nextHostCallId = 1;
// Host calls waiting for their reply, by id, across the executions of this worker.
const waitingHostCalls = new Map<number, RunningExecution>();
const hostChannel = new BroadcastChannel(settings.hostChannel);
hostChannel.unref();
hostChannel.onmessage = (event) => {
  const reply = event.data as HostCallMessage | HostCallReply;
  // Other workers' calls and replies to them reach this worker too.
  if (!('ok' in reply) || reply.worker !== threadId) return;
  const execution = waitingHostCalls.get(reply.id);
  if (execution) settleHostCall(execution, reply);
};
// Isolates being prepared, by cache key, so an execution that arrives meanwhile waits for the
// prepared isolate instead of starting a second one.
const preparing = new Map<string, { code: string; done: Promise<void> }>();

function cacheKey(task: { tenant: string; functionName: string; version: number; limits: { memoryMb: number } }) {
  return [task.tenant, task.functionName, task.version, task.limits.memoryMb].join('\u0000');
}

/**
 * Runs one execution, prepares an isolate for a {@link PrepareTask}, or checks a module for a
 * {@link CheckTask}, resolving with its failure or undefined.
 */
export default async function run(
  task: WorkerTask | PrepareTask | CheckTask | StatsTask,
): Promise<ExecutionResult | LoadFailure | IdleIsolateStats | undefined> {
  if ('stats' in task) return { idleIsolates: cache.size, idleHeapBytes: cache.heapBytes };
  if ('prepare' in task) {
    await prepare(task);
    return undefined;
  }
  if ('check' in task) {
    const loaded = await loadWithLimits(cacheKey(task), task);
    if ('warm' in loaded) {
      loaded.warm.dispose();
      return undefined;
    }
    return loaded;
  }
  return execute(task);
}

/**
 * Creates an isolate and evaluates the version's module under its time, CPU and memory limits.
 * Resolves with the ready isolate, or with the failure after disposing it.
 */
async function loadWithLimits(
  key: string,
  task: PrepareTask | CheckTask,
): Promise<{ warm: WarmIsolate } | LoadFailure> {
  const isolate = new ivm.Isolate({ memoryLimit: task.limits.memoryMb, onCatastrophicError });
  let breach: Breach | undefined;
  const stop = (reason: Breach) => {
    breach ??= reason;
    if (!isolate.isDisposed) isolate.dispose();
  };
  const deadline = setTimeout(() => stop('timeout'), task.limits.timeoutMs);
  const cpuLimitNs = BigInt(Math.round(task.limits.cpuMs * 1e6));
  const cpuPoll = setInterval(() => {
    if (!isolate.isDisposed && isolate.cpuTime > cpuLimitNs) stop('cpu_limit');
  }, cpuPollInterval(task.limits.cpuMs));
  try {
    const warm = await startIsolate(key, task, isolate);
    if (!isolate.isDisposed) return { warm };
    return classifyFailure(new Error('isolate was disposed'), breach ?? 'timeout', task);
  } catch (thrown) {
    if (!isolate.isDisposed) isolate.dispose();
    return classifyFailure(thrown, breach, task);
  } finally {
    clearTimeout(deadline);
    clearInterval(cpuPoll);
  }
}

/**
 * Creates an isolate with the version's module evaluated and leaves it idle in the cache,
 * unless one is there already. The module's top-level code runs under the version's time, CPU
 * and memory limits. A failure only discards the isolate, and the first execution reports it.
 */
async function prepare(task: PrepareTask): Promise<void> {
  const key = cacheKey(task);
  const idle = cache.take(key, task.code);
  if (idle) {
    cache.put(idle);
    return;
  }
  if (preparing.get(key)?.code === task.code) return;

  const done = loadWithLimits(key, task).then((loaded) => {
    if ('warm' in loaded) keepIdle(loaded.warm);
  });
  const entry = { code: task.code, done };
  preparing.set(key, entry);
  try {
    await done;
  } finally {
    if (preparing.get(key) === entry) preparing.delete(key);
  }
}

/** Runs one execution and reports how it ended; never rejects for a function's own failure. */
async function execute(task: WorkerTask): Promise<ExecutionResult> {
  const started = performance.now();
  const execution: RunningExecution = {
    seq: nextSeq++,
    hostToken: task.hostToken,
    hostCalls: new Map(),
    logs: [],
    logBytes: 0,
    droppedLogs: 0,
    ended: false,
  };

  const key = cacheKey(task);
  let warm = cache.take(key, task.code);
  const pending = warm ? undefined : preparing.get(key);
  if (pending && pending.code === task.code) {
    await pending.done;
    warm = cache.take(key, task.code);
  }
  let breach: Breach | undefined;
  let current: ivm.Isolate | undefined = warm?.isolate;
  let cpuStart = warm ? warm.isolate.cpuTime : 0n;

  function stop(reason: Breach): void {
    breach ??= reason;
    if (current && !current.isDisposed) current.dispose();
  }
  const deadline = setTimeout(() => stop('timeout'), task.limits.timeoutMs);
  const cpuLimitNs = BigInt(Math.round(task.limits.cpuMs * 1e6));
  const cpuPoll = setInterval(() => {
    if (current && !current.isDisposed && current.cpuTime - cpuStart > cpuLimitNs) {
      stop('cpu_limit');
    }
  }, cpuPollInterval(task.limits.cpuMs));

  let status: ExecutionStatus;
  let response: FunctionResponse | undefined;
  let error: string | undefined;
  try {
    if (!warm) {
      const isolate = new ivm.Isolate({
        memoryLimit: task.limits.memoryMb,
        onCatastrophicError: onCatastrophicError,
      });
      current = isolate;
      cpuStart = 0n;
      warm = await startIsolate(key, task, isolate);
    }
    warm.execution = execution;
    const envelopeJson = await warm.run.apply(undefined, [
      JSON.stringify(task.request),
      JSON.stringify({
        seq: execution.seq,
        tenant: task.tenant,
        executionId: task.executionId,
        functionName: task.functionName,
        version: task.version,
        hostNames: task.hostNames,
      }),
    ], { arguments: { copy: true }, result: { promise: true, copy: true } });
    ({ status, response, error } = readEnvelope(envelopeJson));
    if (error !== undefined) error = functionFrames(error, task);
    execution.droppedLogs += readUnsentLogs(envelopeJson);
  } catch (thrown) {
    ({ status, error } = classifyFailure(thrown, breach, task));
  } finally {
    clearTimeout(deadline);
    clearInterval(cpuPoll);
    endExecution(execution);
  }

  if (warm) {
    warm.execution = undefined;
    if (breach || warm.isolate.isDisposed || status === 'memory_limit') warm.dispose();
    else keepIdle(warm);
  } else if (current && !current.isDisposed) {
    current.dispose();
  }

  return {
    status,
    ...(response ? { response } : {}),
    ...(error !== undefined ? { error } : {}),
    logs: finishLogs(execution),
    durationMs: performance.now() - started,
  };
}

/**
 * Measures an isolate's heap and returns it to the cache, or disposes it when its heap is
 * above `maxReusedHeapBytes`. The measure is the committed heap plus external memory such as
 * ArrayBuffers, the memory the isolate keeps from the process while idle.
 */
function keepIdle(warm: WarmIsolate): void {
  let heap;
  try {
    heap = warm.isolate.getHeapStatisticsSync();
  } catch {
    // The isolate was disposed meanwhile, by a watchdog or its memory limit.
    warm.dispose();
    return;
  }
  warm.heapBytes = heap.total_heap_size + heap.externally_allocated_size;
  if (warm.heapBytes > settings.maxReusedHeapBytes) warm.dispose();
  else cache.put(warm);
}

/** Creates the context, runs the bootstrap and the function module, and returns `run`. */
async function startIsolate(
  key: string,
  task: Pick<WorkerTask, 'code' | 'functionName' | 'version'>,
  isolate: ivm.Isolate,
) {
  const warm: WarmIsolate = {
    key,
    code: task.code,
    heapBytes: 0,
    isolate,
    run: undefined as unknown as WarmIsolate['run'],
    execution: undefined,
    dispose() {
      if (!isolate.isDisposed) isolate.dispose();
    },
  };

  const hostCall = new ivm.Reference(
    (seq: number, name: string, argsJson: string): Promise<string> | string => {
      const execution = warm.execution;
      if (!execution || execution.seq !== seq || execution.ended) return staleReply;
      return requestHostCall(execution, name, argsJson);
    },
  );
  const sendLog = new ivm.Callback(
    (seq: number, level: string, message: string, fieldsJson: string) => {
      const execution = warm.execution;
      if (!execution || execution.seq !== seq || execution.ended) return;
      appendLog(execution, level, message, fieldsJson);
    },
    { ignored: true },
  );

  try {
    const context = await isolate.createContext();
    const install = await context.evalClosure(
      sandboxBootstrap,
      [hostCall, sendLog, JSON.stringify(sandboxSettings())],
      { result: { reference: true } },
    );
    const module = await isolate.compileModule(task.code, { filename: moduleFilename(task) });
    await module.instantiate(context, (specifier: string) => {
      throw new Error(`Cannot import "${specifier}": functions cannot import modules.`);
    });
    await module.evaluate();
    const handler = await module.namespace.get('default', { reference: true });
    warm.run = (await install.apply(undefined, [handler.derefInto()], {
      result: { reference: true },
    })) as WarmIsolate['run'];
    install.release();
    module.release();
    return warm;
  } catch (error) {
    hostCall.release();
    throw error;
  }
}

function sandboxSettings(): SandboxSettings {
  return {
    maxLogEntries: settings.maxLogEntries,
    maxLogBytes: settings.maxLogBytes,
    maxLogMessageChars: settings.maxLogMessageChars,
    maxErrorChars: settings.maxErrorChars,
    maxResponseBytes: settings.maxResponseBytes,
  };
}

function requestHostCall(
  execution: RunningExecution,
  name: string,
  argsJson: string,
): Promise<string> | string {
  if (argsJson.length > settings.maxHostCallBytes) {
    const message = `Arguments of ctx.${name} are larger than ${settings.maxHostCallBytes} bytes`;
    return JSON.stringify({ ok: false, message });
  }
  const id = nextHostCallId++;
  return new Promise((resolve) => {
    execution.hostCalls.set(id, resolve);
    waitingHostCalls.set(id, execution);
    const message: HostCallMessage = { token: execution.hostToken, worker: threadId, id, name, argsJson };
    hostChannel.postMessage(message);
  });
}

function settleHostCall(execution: RunningExecution, reply: HostCallReply): void {
  const resolve = execution.hostCalls.get(reply.id);
  if (!resolve) return;
  execution.hostCalls.delete(reply.id);
  waitingHostCalls.delete(reply.id);
  if (reply.ok) {
    resolve(`{"ok":true,"value":${reply.valueJson}}`);
  } else {
    resolve(JSON.stringify({ ok: false, message: reply.message }));
  }
}

function endExecution(execution: RunningExecution): void {
  execution.ended = true;
  // Settling pending calls lets isolated-vm release them; the sandbox leaves them pending.
  for (const [id, resolve] of execution.hostCalls) {
    waitingHostCalls.delete(id);
    resolve(staleReply);
  }
  execution.hostCalls.clear();
}

function appendLog(
  execution: RunningExecution,
  level: string,
  message: string,
  fieldsJson: string,
): void {
  const bytes = Buffer.byteLength(message) + Buffer.byteLength(fieldsJson);
  const full = execution.logs.length >= settings.maxLogEntries;
  if (full || execution.logBytes + bytes > settings.maxLogBytes) {
    execution.droppedLogs += 1;
    return;
  }
  execution.logBytes += bytes;

  const entry: ExecutionLog = {
    level: logLevels.has(level) ? (level as ExecutionLog['level']) : 'info',
    message,
    time: Date.now(),
  };
  const fields = parseFields(fieldsJson);
  if (fields) entry.fields = fields;
  execution.logs.push(entry);
}

function parseFields(fieldsJson: string): Record<string, JsonValue> | undefined {
  if (fieldsJson === '') return undefined;
  try {
    const value: unknown = JSON.parse(fieldsJson);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, JsonValue>;
    }
    return { value: value as JsonValue };
  } catch {
    // The sandbox truncates oversized fields, which leaves invalid JSON.
    return { truncated: true };
  }
}

// NOTE: log callbacks and the result reach this thread through isolated-vm's task queue.
// Entries written just before `return` arrived first in every test run, but isolated-vm does
// not document that order, so a final entry could be missed under load.
// NOTE: the sandbox reports the entries it did not send in the envelope, so an execution that
// ends on a limit counts only the entries that reached this thread.
function finishLogs(execution: RunningExecution): ExecutionLog[] {
  if (execution.droppedLogs === 0) return execution.logs;
  const count = execution.droppedLogs;
  const message =
    `${count} log ${count === 1 ? 'entry' : 'entries'} dropped: an execution keeps at most ` +
    `${settings.maxLogEntries} entries and ${settings.maxLogBytes} bytes`;
  return [...execution.logs, { level: 'warn', message, time: Date.now() }];
}

/** Maps a rejected execution to its status, preferring the limit the watchdog enforced. */
function classifyFailure(
  thrown: unknown,
  breach: Breach | undefined,
  task: Pick<WorkerTask, 'functionName' | 'version' | 'limits'>,
): LoadFailure {
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  if (breach === 'timeout') {
    return { status: 'timeout', error: `Execution timed out after ${task.limits.timeoutMs} ms` };
  }
  if (breach === 'cpu_limit') {
    return { status: 'cpu_limit', error: `Execution used more than ${task.limits.cpuMs} ms of CPU time` };
  }
  // isolated-vm 6.2 disposes an isolate over its memoryLimit and rejects with this message.
  // NOTE: a failed large ArrayBuffer allocation instead throws a catchable RangeError inside
  // the function, so it ends as `error`, and the isolate is discarded if it was disposed.
  if (message.includes('memory limit')) {
    return {
      status: 'memory_limit',
      error: `Execution used more than the ${task.limits.memoryMb} MB memory limit`,
    };
  }
  const detail = thrown instanceof Error && thrown.stack ? thrown.stack : message;
  return { status: 'error', error: functionFrames(detail, task).slice(0, settings.maxErrorChars) };
}

/**
 * Removes the stack frames that do not point into the function's own module: the worker's
 * host frames, which name files on the server, and the sandbox bootstrap's. The message
 * lines stay.
 */
function functionFrames(text: string, task: Pick<WorkerTask, 'functionName' | 'version'>): string {
  const moduleFile = moduleFilename(task);
  return text
    .split('\n')
    .filter((line) => !/^\s+at\b/.test(line) || line.includes(moduleFile))
    .join('\n');
}

function moduleFilename(task: Pick<WorkerTask, 'functionName' | 'version'>): string {
  return `file:///${task.functionName}@${task.version}.js`;
}

/**
 * Reads the envelope's count of log entries the sandbox did not send. Function code could
 * change it, but only to misreport its own logs, so an invalid count only reads as zero.
 */
function readUnsentLogs(envelopeJson: unknown): number {
  if (typeof envelopeJson !== 'string') return 0;
  try {
    const { unsentLogs } = JSON.parse(envelopeJson) as { unsentLogs?: unknown };
    return Number.isSafeInteger(unsentLogs) && (unsentLogs as number) > 0 ? (unsentLogs as number) : 0;
  } catch {
    return 0;
  }
}

const headerName = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Validates the sandbox's envelope, which function code could have tampered with. */
function readEnvelope(envelopeJson: unknown): {
  status: ExecutionStatus;
  response?: FunctionResponse;
  error?: string;
} {
  const invalid = { status: 'error' as const, error: 'The function produced an invalid response' };
  if (typeof envelopeJson !== 'string') return invalid;
  let envelope: Record<string, unknown>;
  try {
    envelope = JSON.parse(envelopeJson) as Record<string, unknown>;
  } catch {
    return invalid;
  }
  if (envelope === null || typeof envelope !== 'object') return invalid;
  if (envelope.ok !== true) {
    const error = typeof envelope.error === 'string' ? envelope.error : invalid.error;
    return { status: 'error', error: error.slice(0, settings.maxErrorChars) };
  }

  const status = envelope.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return { status: 'error', error: `Response status must be an integer from 200 to 599, got ${String(status)}` };
  }
  const headers = readHeaders(envelope.headers);
  if (typeof headers === 'string') return { status: 'error', error: headers };

  const { kind, body } = envelope;
  if (typeof body !== 'string') return invalid;
  if (Buffer.byteLength(body) > settings.maxResponseBytes) {
    return { status: 'error', error: `Response body is larger than ${settings.maxResponseBytes} bytes` };
  }
  if (kind === 'empty') return { status: 'succeeded', response: { status, headers, body: null } };
  if (kind === 'text') return { status: 'succeeded', response: { status, headers, body } };
  if (kind !== 'json') return invalid;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return invalid;
  }
  // JSON objects and arrays stay parsed; a top-level number, boolean or string stays as text.
  const parsed = value !== null && typeof value === 'object' ? value : body;
  return { status: 'succeeded', response: { status, headers, body: parsed } };
}

function readHeaders(value: unknown): Record<string, string> | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'Response headers must be an object of strings';
  }
  const headers: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > 100) return 'A response may have at most 100 headers';
  for (const [name, headerValue] of entries) {
    if (!headerName.test(name)) return `Response header name "${name.slice(0, 100)}" is invalid`;
    if (typeof headerValue !== 'string' || /[\r\n\0]/.test(headerValue)) {
      return `Response header "${name}" must be a string without line breaks`;
    }
    headers[name] = headerValue;
  }
  return headers;
}

function cpuPollInterval(cpuMs: number): number {
  // Checks often enough to stop within about a quarter of the limit, at most every 5 ms.
  return Math.min(100, Math.max(5, Math.floor(cpuMs / 4)));
}

function onCatastrophicError(message: string): void {
  // isolated-vm reports that V8 lost control of an isolate. Ending this thread makes piscina
  // fail the worker's running tasks and start a fresh worker.
  log.fatal({ message }, 'isolated-vm reported a catastrophic error; ending the worker');
  process.exit(1);
}
