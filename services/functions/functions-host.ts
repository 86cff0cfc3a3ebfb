import type { Logger } from '../core/logger.ts';
import type { SecretBox } from '../core/secret-box.ts';
import { createActiveVersionCache, type ActiveVersionCache } from './active-versions.ts';
import { createExecutionRecorder, type ExecutionRecorder } from './execution-recorder.ts';
import { createExecutionRateLimiter, type ExecutionRateLimiter } from './rate-limit.ts';
import { createFunctionRuntime, type FunctionRuntime, type FunctionRuntimeOptions } from './runtime/runtime.ts';

/**
 * The parts that running tenant functions need, created once per server and reachable as
 * `platform.functions`: the sandbox runtime, the secret box for `ctx.secrets`, the logger, the
 * per-tenant execution rate limiter, the cache of active versions and the execution recorder.
 */
export interface FunctionsHost {
  /** The sandbox runtime, started on first use so a server that runs no function starts no worker. */
  readonly runtime: FunctionRuntime;
  readonly secretBox: SecretBox;
  readonly logger: Logger;
  readonly rateLimiter: ExecutionRateLimiter;
  /** Active code per function; code that changes a function's row or active version calls `forget`. */
  readonly versions: ActiveVersionCache;
  /** Writes execution rows after the response; reads of executions `flush` it first. */
  readonly recorder: ExecutionRecorder;
  /** Writes the queued execution rows, then stops the runtime's workers. Later calls do nothing. */
  close(): Promise<void>;
}

/** Creates the host. The runtime starts when `runtime` is first read. */
export function createFunctionsHost(options: {
  secretBox: SecretBox;
  logger: Logger;
  runtimeOptions?: FunctionRuntimeOptions;
}): FunctionsHost {
  let runtime: FunctionRuntime | undefined;
  let closed = false;
  const recorder = createExecutionRecorder(options.logger);

  return {
    get runtime() {
      if (closed) throw new Error('the function runtime is closed');
      runtime ??= createFunctionRuntime(options.runtimeOptions);
      return runtime;
    },
    secretBox: options.secretBox,
    logger: options.logger,
    rateLimiter: createExecutionRateLimiter(),
    versions: createActiveVersionCache(),
    recorder,
    async close() {
      if (closed) return;
      closed = true;
      await recorder.close();
      await runtime?.close();
    },
  };
}
