import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-web';

import { Documents } from '#gen/tansu/data/v1/documents_pb.js';
import { Functions } from '#gen/tansu/functions/v1/functions_pb.js';
import { Secrets } from '#gen/tansu/functions/v1/secrets_pb.js';
import { Triggers } from '#gen/tansu/functions/v1/triggers_pb.js';
import { TenantAuth, type SignInResponse, type SignUpResponse } from '#gen/tansu/identity/v1/auth_pb.js';
import { Clients } from '#gen/tansu/identity/v1/clients_pb.js';
import { Invitations } from '#gen/tansu/identity/v1/invitations_pb.js';
import { OAuthProviders } from '#gen/tansu/identity/v1/oauth_providers_pb.js';
import { Settings } from '#gen/tansu/identity/v1/settings_pb.js';
import { SigningKeys } from '#gen/tansu/identity/v1/signing_keys_pb.js';
import { Users } from '#gen/tansu/identity/v1/users_pb.js';
import { PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { Tenants } from '#gen/tansu/platform/v1/tenants_pb.js';
import { createSessionTransport } from './session-transport.ts';
import {
  createMemoryTokenStore,
  DEFAULT_REFRESH_MARGIN_SECONDS,
  tokenPairFrom,
  type TokenPair,
  type TokenStore,
} from './token-store.ts';

/** Options of createTansuClient. */
export interface TansuClientOptions {
  /** Tenant every call is for, sent as `X-Tansu-Tenant`. */
  tenant: string;
  /**
   * Server address, such as `https://api.example.com`. Required unless `transport` is a
   * Transport, which carries its own address.
   */
  baseUrl?: string;
  /**
   * Protocol: `connect` (default) or `grpc-web`, both over the fetch API, so they run in
   * browsers, Node, Deno and Bun. Or any connect-es Transport, such as connect-node's
   * `createGrpcTransport` for gRPC over HTTP/2.
   */
  transport?: 'connect' | 'grpc-web' | Transport;
  /** fetch implementation for the built-in transports; the global fetch when left out. */
  fetch?: typeof globalThis.fetch;
  /** Storage for the tokens; in memory when left out. */
  tokenStore?: TokenStore;
  /** Seconds before expiry at which the access token is refreshed; 30 when left out. */
  refreshMarginSeconds?: number;
}

/** A Tansu client for one tenant: a typed client per service and the session helpers. */
export interface TansuClient {
  /** The tenant every call is for. */
  readonly tenant: string;
  /** The store holding the signed-in user's tokens. */
  readonly tokenStore: TokenStore;
  auth: Client<typeof TenantAuth>;
  users: Client<typeof Users>;
  clients: Client<typeof Clients>;
  settings: Client<typeof Settings>;
  signingKeys: Client<typeof SigningKeys>;
  oauthProviders: Client<typeof OAuthProviders>;
  invitations: Client<typeof Invitations>;
  tenants: Client<typeof Tenants>;
  platformAuth: Client<typeof PlatformAuth>;
  functions: Client<typeof Functions>;
  secrets: Client<typeof Secrets>;
  triggers: Client<typeof Triggers>;
  documents: Client<typeof Documents>;
  /** Creates an account in the tenant and stores its tokens, which signs the user in. */
  signUp(request: { email: string; password: string; displayName?: string }): Promise<SignUpResponse>;
  /** Signs in with email and password and stores the tokens. */
  signIn(request: { email: string; password: string }): Promise<SignInResponse>;
  /**
   * Ends the session on the server (revoking its refresh tokens) and clears the stored tokens.
   * The local tokens are cleared even when the server cannot be reached; that error is thrown.
   */
  signOut(): Promise<void>;
  /**
   * Exchanges the refresh token for a new pair now and stores it; concurrent calls share one
   * exchange. Calls refresh on their own when needed, so this is rarely called directly.
   */
  refresh(): Promise<TokenPair | undefined>;
}

function baseTransport(options: TansuClientOptions): Transport {
  const choice = options.transport ?? 'connect';
  if (typeof choice === 'object') return choice;
  if (!options.baseUrl) {
    throw new Error('createTansuClient: missing baseUrl; pass the server address or a Transport');
  }
  const settings = { baseUrl: options.baseUrl, fetch: options.fetch };
  switch (choice) {
    case 'connect':
      return createConnectTransport(settings);
    case 'grpc-web':
      return createGrpcWebTransport(settings);
    default:
      throw new Error(`createTansuClient: transport must be "connect", "grpc-web" or a Transport, got "${String(choice)}"`);
  }
}

/**
 * Creates a client for one tenant. Every call sends `X-Tansu-Tenant` (so request messages may
 * leave `tenant` empty) and the stored access token. The token is refreshed ahead of expiry,
 * and a call that fails with UNAUTHENTICATED is retried once after a refresh. A refresh token the
 * server rejects clears the store: the user must sign in again.
 */
export function createTansuClient(options: TansuClientOptions): TansuClient {
  if (!options.tenant) throw new Error('createTansuClient: missing tenant; pass the id of the tenant to call');
  const tokenStore = options.tokenStore ?? createMemoryTokenStore();
  const margin = options.refreshMarginSeconds ?? DEFAULT_REFRESH_MARGIN_SECONDS;
  const now = () => Date.now();

  let inFlight: Promise<TokenPair | undefined> | undefined;
  const refresh = (): Promise<TokenPair | undefined> => {
    inFlight ??= exchangeRefreshToken().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const transport = createSessionTransport(baseTransport(options), {
    tenant: options.tenant,
    tokenStore,
    now,
    refresh,
  });
  const auth = createClient(TenantAuth, transport);

  async function exchangeRefreshToken(): Promise<TokenPair | undefined> {
    const current = await tokenStore.get();
    if (!current) return undefined;
    try {
      const response = await auth.refresh({ refreshToken: current.refreshToken });
      const tokens = tokenPairFrom(response, now(), margin);
      await tokenStore.set(tokens);
      return tokens;
    } catch (error) {
      // Only a rejected refresh token ends the session. After a network failure the tokens stay.
      if (ConnectError.from(error).code === Code.Unauthenticated) await tokenStore.set(undefined);
      throw error;
    }
  }

  return {
    tenant: options.tenant,
    tokenStore,
    auth,
    users: createClient(Users, transport),
    clients: createClient(Clients, transport),
    settings: createClient(Settings, transport),
    signingKeys: createClient(SigningKeys, transport),
    oauthProviders: createClient(OAuthProviders, transport),
    invitations: createClient(Invitations, transport),
    functions: createClient(Functions, transport),
    secrets: createClient(Secrets, transport),
    triggers: createClient(Triggers, transport),
    documents: createClient(Documents, transport),
    tenants: createClient(Tenants, transport),
    platformAuth: createClient(PlatformAuth, transport),
    refresh,

    async signUp(request) {
      const response = await auth.signUp(request);
      await tokenStore.set(tokenPairFrom(response, now(), margin));
      return response;
    },

    async signIn(request) {
      const response = await auth.signIn(request);
      await tokenStore.set(tokenPairFrom(response, now(), margin));
      return response;
    },

    async signOut() {
      const current = await tokenStore.get();
      if (!current) return;
      try {
        await auth.signOut({ refreshToken: current.refreshToken });
      } catch (error) {
        // UNAUTHENTICATED means the session had already ended, so sign-out has nothing left to do.
        if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
      } finally {
        await tokenStore.set(undefined);
      }
    },
  };
}
