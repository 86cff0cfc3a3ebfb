import { ConnectError } from '@connectrpc/connect';

import { ErrorInfoSchema, RetryInfoSchema } from '#gen/google/rpc/error_details_pb.js';

/**
 * Returns the `google.rpc.ErrorInfo` reason of a failed call, such as `EMAIL_ALREADY_EXISTS`
 * or `RATE_LIMITED`, or undefined when the error carries none (a network failure, an error
 * from a proxy). Branch on the reason, not on the message: reasons keep their meaning.
 */
export function errorReason(error: unknown): string | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

/**
 * Returns the `google.rpc.ErrorInfo` metadata of a failed call (for example `field` for an
 * INVALID_ARGUMENT), or an empty object when there is none.
 */
export function errorMetadata(error: unknown): Record<string, string> {
  if (!(error instanceof ConnectError)) return {};
  return error.findDetails(ErrorInfoSchema)[0]?.metadata ?? {};
}

/**
 * Returns how many seconds to wait before trying again, from the `google.rpc.RetryInfo` detail
 * that RATE_LIMITED and ACCOUNT_LOCKED errors carry, or undefined when the error has none.
 */
export function retryAfterSeconds(error: unknown): number | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (!delay) return undefined;
  return Number(delay.seconds) + delay.nanos / 1e9;
}
