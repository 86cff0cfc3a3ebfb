import type { Logger } from '../core/logger.ts';
import type { SecretBox } from '../core/secret-box.ts';
import { createExecutionRateLimiter, type ExecutionRateLimiter } from './rate-limit.ts';
import { createFunctionRuntime, type FunctionRuntime, type FunctionRuntimeOptions } from './runtime/runtime.ts';

/**
 * What running tenant functions needs, created once per server and reachable as
 * `platform.functions`: the sandbox runtime, the secret box for `ctx.secrets`, the logger and
 * the per-tenant execution rate limiter.
 */
export interface FunctionsHost {
  /** The sandbox runtime, started on first use so a server that runs no function starts no worker. */
  readonly runtime: FunctionRuntime;
  readonly secretBox: SecretBox;
  readonly logger: Logger;
  readonly rateLimiter: ExecutionRateLimiter;
  /** Stops the runtime's workers. Later calls do nothing. */
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

  return {
    get runtime() {
      if (closed) throw new Error('the function runtime is closed');
      runtime ??= createFunctionRuntime(options.runtimeOptions);
      return runtime;
    },
    secretBox: options.secretBox,
    logger: options.logger,
    rateLimiter: createExecutionRateLimiter(),
    async close() {
      if (closed) return;
      closed = true;
      await runtime?.close();
    },
  };
}
