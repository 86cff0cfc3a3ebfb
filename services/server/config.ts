import { isIP } from 'node:net';
import { resolve } from 'node:path';

/** Validated server configuration, read once at start from the environment. */
export interface Config {
  /** TCP port; 0 picks a free one. */
  port: number;
  host: string;
  /** Base URL that clients use to reach the server; the issuer of tokens starts with it. */
  publicBaseUrl: string;
  /** External PostgreSQL server; undefined starts the embedded one in `dataDir`. */
  databaseUrl: string | undefined;
  /** Directory of the embedded database, the generated master key and admin password. */
  dataDir: string;
  /** Prefix of every database name, `tansu_` by default (`tansu_platform`, `tansu_tenant_<id>`). */
  databasePrefix: string;
  adminEmail: string;
  /** Undefined: generate one on first start and store it in the data directory. */
  adminPassword: string | undefined;
  /** Base64 or hex of 32 bytes; undefined: use or create `<dataDir>/master.key`. */
  masterKey: string | undefined;
  /** Whether to create the `demo` tenant on first start. */
  createDemoTenant: boolean;
  /** Addresses of reverse proxies whose X-Forwarded-For is trusted. */
  trustedProxies: string[];
  /** Connections per tenant pool. */
  tenantPoolSize: number;
  /** Connections that all tenant pools together may hold. */
  maxTenantConnections: number;
  /** SMTP server for invitation mail, such as `smtp://127.0.0.1:2525`; undefined: no mail. */
  smtpUrl: string | undefined;
  /** Sender address of mail. */
  mailFrom: string;
  /** Seconds between two checks for signing keys older than their tenant's rotation interval. */
  keyRotationCheckSeconds: number;
  /**
   * Whether social sign-in provider URLs may use plain http and reach loopback and private
   * addresses; for development and tests with local stand-in providers only.
   */
  allowPrivateProviderUrls: boolean;
}

/** A configuration value that is invalid; the message names the variable and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function readInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function readBoolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** Reads and validates the configuration; throws ConfigError on the first bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = readInteger(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  if (!isIP(host) && host !== 'localhost') {
    throw new ConfigError(`HOST must be an IP address or localhost, got "${host}"`);
  }

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }

  const databasePrefix = env.TANSU_DB_PREFIX || 'tansu_';
  if (!/^[a-z][a-z0-9_]{0,20}$/.test(databasePrefix)) {
    throw new ConfigError(
      `TANSU_DB_PREFIX must be 1 to 21 lowercase letters, digits or underscores starting with a letter, got "${databasePrefix}"`,
    );
  }

  const adminEmail = (env.TANSU_ADMIN_EMAIL || 'admin@tansu.local').trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+$/.test(adminEmail)) {
    throw new ConfigError(`TANSU_ADMIN_EMAIL must be an email address, got "${adminEmail}"`);
  }
  const adminPassword = env.TANSU_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && adminPassword.length < 12) {
    throw new ConfigError('TANSU_ADMIN_PASSWORD must be at least 12 characters long');
  }

  const trustedProxies = (env.TANSU_TRUSTED_PROXIES ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const proxy of trustedProxies) {
    if (!isIP(proxy)) {
      throw new ConfigError(`TANSU_TRUSTED_PROXIES must be a comma-separated list of IP addresses, got "${proxy}"`);
    }
  }

  const publicBaseUrl = (env.TANSU_PUBLIC_URL || '').replace(/\/+$/, '');
  if (publicBaseUrl && !/^https?:\/\/[^/]+(\/.*)?$/.test(publicBaseUrl)) {
    throw new ConfigError(`TANSU_PUBLIC_URL must be an http(s) URL, got "${publicBaseUrl}"`);
  }

  const tenantPoolSize = readInteger(env, 'TANSU_TENANT_POOL_SIZE', 5, 1, 100);
  const maxTenantConnections = readInteger(env, 'TANSU_MAX_TENANT_CONNECTIONS', 200, 1, 100000);
  if (maxTenantConnections < tenantPoolSize) {
    throw new ConfigError('TANSU_MAX_TENANT_CONNECTIONS must be at least TANSU_TENANT_POOL_SIZE');
  }

  const smtpUrl = env.TANSU_SMTP_URL || undefined;
  if (smtpUrl && !/^smtps?:\/\/[^/]+/.test(smtpUrl)) {
    throw new ConfigError(`TANSU_SMTP_URL must be an smtp:// or smtps:// URL, got "${smtpUrl}"`);
  }
  const mailFrom = env.TANSU_MAIL_FROM || 'Tansu <no-reply@tansu.local>';
  if (!/[^@\s<]+@[^@\s>]+/.test(mailFrom)) {
    throw new ConfigError(`TANSU_MAIL_FROM must be an email address such as "Acme <no-reply@acme.test>", got "${mailFrom}"`);
  }

  return {
    port,
    host,
    // With PORT=0 the real port is known only after listening; main.ts fills it in then.
    publicBaseUrl,
    databaseUrl,
    dataDir: resolve(env.TANSU_DATA_DIR || '.data'),
    databasePrefix,
    adminEmail,
    adminPassword,
    masterKey: env.TANSU_MASTER_KEY || undefined,
    createDemoTenant: readBoolean(env, 'TANSU_DEMO_TENANT', true),
    trustedProxies,
    tenantPoolSize,
    maxTenantConnections,
    smtpUrl,
    mailFrom,
    keyRotationCheckSeconds: readInteger(env, 'TANSU_KEY_ROTATION_CHECK_SECONDS', 300, 1, 86400),
    allowPrivateProviderUrls: readBoolean(env, 'TANSU_ALLOW_PRIVATE_PROVIDER_URLS', false),
  };
}
