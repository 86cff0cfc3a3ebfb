// Types shared by the main-thread runtime and its piscina workers.

/** A value that survives JSON round trips; the only kind that crosses the sandbox boundary. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The HTTP request a function receives as its first argument, as plain JSON data. */
export interface FunctionRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string>;
  /** Parsed JSON body, raw text, or null when the request had none. */
  body: JsonValue;
}

/** Resource limits of one execution. */
export interface ExecutionLimits {
  /** Wall-clock time from the start of the execution, cold start included, in milliseconds. */
  timeoutMs: number;
  /** CPU time spent inside the isolate, in milliseconds. */
  cpuMs: number;
  /** V8 heap limit of the isolate, in MiB (isolated-vm's minimum is 8). */
  memoryMb: number;
}

/**
 * Platform services a function reaches through `ctx`, keyed by dotted name: the host call
 * `'secrets.get'` becomes `ctx.secrets.get(...)`. Each runs in the main thread. Arguments and
 * results cross as JSON copies, so `undefined` becomes null and class instances lose their
 * prototype. A thrown error reaches the function as a new sandbox Error with the same message
 * and nothing else, so messages must be safe to show to the tenant.
 */
export type HostCalls = Record<string, (...args: JsonValue[]) => Promise<unknown>>;

/** One log entry a function wrote through `ctx.log` or `console`. */
export interface ExecutionLog {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, JsonValue>;
  /** Milliseconds since the Unix epoch, taken in the worker when the entry arrived. */
  time: number;
}

/** Outcome of an execution. A limit or error status ends that execution only. */
export type ExecutionStatus = 'succeeded' | 'error' | 'timeout' | 'cpu_limit' | 'memory_limit';

/**
 * The HTTP response a function produced. `body` is a string to send as it is (its
 * content-type header says what it is), a JSON object or array to serialize, or null for an
 * empty body.
 */
export interface FunctionResponse {
  status: number;
  headers: Record<string, string>;
  body: string | object | null;
}

/** The outcome of one execution. */
export interface ExecutionResult {
  status: ExecutionStatus;
  /** Present only when `status` is `succeeded`. */
  response?: FunctionResponse;
  /** Failure description for the tenant: the function's own error and stack, or the limit. */
  error?: string;
  logs: ExecutionLog[];
  /** Wall time in the worker from the start of the execution to its end, in milliseconds. */
  durationMs: number;
}

/** One execution request: the function version, its input, limits and host calls. */
export interface ExecutionTask {
  tenant: string;
  functionName: string;
  version: number;
  executionId: string;
  /** Compiled ES module source, as `compileFunction` returns it. */
  code: string;
  request: FunctionRequest;
  limits: ExecutionLimits;
  host: HostCalls;
}
