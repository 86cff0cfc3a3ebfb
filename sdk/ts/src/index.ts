// @tansu/sdk: the client (createTansuClient and its session handling), the error helpers, and
// the generated service descriptors and message types of every Tansu API. A new proto file is
// added here with one `export *` line; its service then also needs a field in client.ts.

export { createTansuClient, type TansuClient, type TansuClientOptions } from './client.ts';
export { errorMetadata, errorReason, retryAfterSeconds } from './errors.ts';
export { createSessionTransport, type Session } from './session-transport.ts';
export {
  createMemoryTokenStore,
  DEFAULT_REFRESH_MARGIN_SECONDS,
  tokenPairFrom,
  type TokenPair,
  type TokenStore,
} from './token-store.ts';

export * from '#gen/tansu/data/v1/documents_pb.js';
export * from '#gen/tansu/functions/v1/function_pb.js';
export * from '#gen/tansu/functions/v1/functions_pb.js';
export * from '#gen/tansu/functions/v1/secrets_pb.js';
export * from '#gen/tansu/functions/v1/triggers_pb.js';
export * from '#gen/tansu/identity/v1/auth_pb.js';
export * from '#gen/tansu/identity/v1/clients_pb.js';
export * from '#gen/tansu/identity/v1/invitations_pb.js';
export * from '#gen/tansu/identity/v1/oauth_providers_pb.js';
export * from '#gen/tansu/identity/v1/settings_pb.js';
export * from '#gen/tansu/identity/v1/signing_keys_pb.js';
export * from '#gen/tansu/identity/v1/user_pb.js';
export * from '#gen/tansu/identity/v1/users_pb.js';
export * from '#gen/tansu/platform/v1/platform_auth_pb.js';
export * from '#gen/tansu/platform/v1/tenant_pb.js';
export * from '#gen/tansu/platform/v1/tenants_pb.js';
export * from '#gen/google/rpc/error_details_pb.js';
