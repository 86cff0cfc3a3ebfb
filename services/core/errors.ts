import { Code, ConnectError } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';

import { ErrorInfoSchema, RetryInfoSchema } from '#gen/google/rpc/error_details_pb.js';

/** Domain of every `google.rpc.ErrorInfo` the server attaches. */
export const ERROR_DOMAIN = 'tansu.dev';

/**
 * The catalogue of domain errors: each reason (UPPER_SNAKE, sent to clients in
 * `google.rpc.ErrorInfo.reason`) with its canonical gRPC code. Clients branch on the reason,
 * so a reason, once shipped, keeps its meaning; retire one by leaving it here unused.
 */
export const errorCatalogue = {
  // Requests
  INVALID_ARGUMENT: Code.InvalidArgument,
  INVALID_PAGE_TOKEN: Code.InvalidArgument,
  INVALID_TENANT_ID: Code.InvalidArgument,
  TENANT_MISMATCH: Code.InvalidArgument,
  // Tenancy
  TENANT_NOT_FOUND: Code.NotFound,
  TENANT_ALREADY_EXISTS: Code.AlreadyExists,
  TENANT_NOT_READY: Code.Unavailable,
  // Authentication and authorization
  UNAUTHENTICATED: Code.Unauthenticated,
  INVALID_CREDENTIALS: Code.Unauthenticated,
  INVALID_TOKEN: Code.Unauthenticated,
  INVALID_REFRESH_TOKEN: Code.Unauthenticated,
  REFRESH_TOKEN_REUSED: Code.Unauthenticated,
  PERMISSION_DENIED: Code.PermissionDenied,
  ACCOUNT_LOCKED: Code.ResourceExhausted,
  RATE_LIMITED: Code.ResourceExhausted,
  // Users
  EMAIL_ALREADY_EXISTS: Code.AlreadyExists,
  WEAK_PASSWORD: Code.InvalidArgument,
  USER_NOT_FOUND: Code.NotFound,
  INVITATION_NOT_USABLE: Code.FailedPrecondition,
  LAST_TENANT_ADMIN: Code.FailedPrecondition,
  // Generic resources
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  // Triggers
  INVALID_CRON: Code.InvalidArgument,
  // Functions
  FUNCTION_SYNTAX_ERROR: Code.InvalidArgument,
  FUNCTION_INVALID_MODULE: Code.InvalidArgument,
  // Server
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
} as const satisfies Record<string, Code>;

/** A reason from the error catalogue. */
export type ErrorReason = keyof typeof errorCatalogue;

/**
 * Creates the ConnectError for a catalogued domain error. The message goes to the caller and
 * must say what to fix; `metadata` adds machine-readable facts (never secrets); `cause` stays
 * on the server for logs.
 */
export function domainError(
  reason: ErrorReason,
  message: string,
  options: { metadata?: Record<string, string>; cause?: unknown } = {},
): ConnectError {
  const info = create(ErrorInfoSchema, {
    reason,
    domain: ERROR_DOMAIN,
    metadata: options.metadata ?? {},
  });
  return new ConnectError(message, errorCatalogue[reason], undefined, [
    { desc: ErrorInfoSchema, value: info },
  ], options.cause);
}

/** Shorthand for the most common error: INVALID_ARGUMENT naming the field to fix. */
export function invalidArgument(field: string, message: string): ConnectError {
  return domainError('INVALID_ARGUMENT', message, { metadata: { field } });
}

/**
 * Creates a RESOURCE_EXHAUSTED error that carries the retry delay three ways: a
 * `google.rpc.RetryInfo` detail, `retryAfterSeconds` in the ErrorInfo metadata and a
 * `Retry-After` header (REST clients see it as the HTTP header of the 429 response).
 */
export function retryLaterError(reason: 'RATE_LIMITED' | 'ACCOUNT_LOCKED', message: string, retryAfterSeconds: number): ConnectError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  const error = domainError(reason, message, { metadata: { retryAfterSeconds: String(seconds) } });
  error.details.push({
    desc: RetryInfoSchema,
    value: create(RetryInfoSchema, { retryDelay: { seconds: BigInt(seconds), nanos: 0 } }),
  });
  error.metadata.set('retry-after', String(seconds));
  return error;
}
