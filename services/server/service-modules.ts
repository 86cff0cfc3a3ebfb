// The list of services the server exposes; a new service is one import pair and one entry here.
import type { DescFile, DescService } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';

import { Documents, file_tansu_data_v1_documents } from '#gen/tansu/data/v1/documents_pb.js';
import { file_tansu_functions_v1_functions, Functions } from '#gen/tansu/functions/v1/functions_pb.js';
import { file_tansu_functions_v1_secrets, Secrets } from '#gen/tansu/functions/v1/secrets_pb.js';
import { file_tansu_functions_v1_triggers, Triggers } from '#gen/tansu/functions/v1/triggers_pb.js';
import { file_tansu_identity_v1_auth, TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { Clients, file_tansu_identity_v1_clients } from '#gen/tansu/identity/v1/clients_pb.js';
import { file_tansu_identity_v1_invitations, Invitations } from '#gen/tansu/identity/v1/invitations_pb.js';
import { file_tansu_identity_v1_oauth_providers, OAuthProviders } from '#gen/tansu/identity/v1/oauth_providers_pb.js';
import { file_tansu_identity_v1_settings, Settings } from '#gen/tansu/identity/v1/settings_pb.js';
import { file_tansu_identity_v1_signing_keys, SigningKeys } from '#gen/tansu/identity/v1/signing_keys_pb.js';
import { file_tansu_identity_v1_users, Users } from '#gen/tansu/identity/v1/users_pb.js';
import { file_tansu_platform_v1_platform_auth, PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { file_tansu_platform_v1_tenants, Tenants } from '#gen/tansu/platform/v1/tenants_pb.js';
import { documentsRoutes } from '../data/documents-service.ts';
import { functionsRoutes } from '../functions/functions-service.ts';
import { secretsRoutes } from '../functions/secrets-service.ts';
import { clientsRoutes } from '../identity/clients-service.ts';
import { invitationsRoutes } from '../identity/invitations-service.ts';
import { oauthProvidersRoutes } from '../identity/oauth-providers-service.ts';
import { settingsRoutes } from '../identity/settings-service.ts';
import { signingKeysRoutes } from '../identity/signing-keys-service.ts';
import { tenantAuthRoutes } from '../identity/tenant-auth-service.ts';
import { usersRoutes } from '../identity/users-service.ts';
import { platformAuthRoutes } from '../platform/platform-auth-service.ts';
import type { Platform } from '../platform/platform.ts';
import { tenantsRoutes } from '../platform/tenants-service.ts';
import { triggersRoutes } from '../triggers/triggers-service.ts';

/** A service the server exposes: its descriptor, its file (for reflection) and its routes. */
export interface ServiceModule {
  service: DescService;
  file: DescFile;
  routes: (router: ConnectRouter) => void;
}

/** Returns the services of this server, in the order reflection lists them. */
export function serviceModules(platform: Platform): ServiceModule[] {
  return [
    { service: Tenants, file: file_tansu_platform_v1_tenants, routes: tenantsRoutes(platform) },
    { service: PlatformAuth, file: file_tansu_platform_v1_platform_auth, routes: platformAuthRoutes(platform) },
    { service: TenantAuth, file: file_tansu_identity_v1_auth, routes: tenantAuthRoutes(platform) },
    { service: Clients, file: file_tansu_identity_v1_clients, routes: clientsRoutes(platform) },
    { service: OAuthProviders, file: file_tansu_identity_v1_oauth_providers, routes: oauthProvidersRoutes(platform) },
    { service: Invitations, file: file_tansu_identity_v1_invitations, routes: invitationsRoutes(platform) },
    { service: Settings, file: file_tansu_identity_v1_settings, routes: settingsRoutes(platform) },
    { service: Users, file: file_tansu_identity_v1_users, routes: usersRoutes(platform) },
    { service: SigningKeys, file: file_tansu_identity_v1_signing_keys, routes: signingKeysRoutes(platform) },
    { service: Functions, file: file_tansu_functions_v1_functions, routes: functionsRoutes(platform) },
    { service: Secrets, file: file_tansu_functions_v1_secrets, routes: secretsRoutes(platform) },
    { service: Documents, file: file_tansu_data_v1_documents, routes: documentsRoutes(platform) },
    { service: Triggers, file: file_tansu_functions_v1_triggers, routes: triggersRoutes(platform) },
  ];
}
