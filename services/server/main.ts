// Entry point of `npm start`: validates the configuration, starts the embedded PostgreSQL when
// DATABASE_URL is unset, opens the platform, creates the demo tenant on first start and serves
// every protocol on one port.
import '../../scripts/require-node.ts';

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { logger } from '../core/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.ts';
import { startKeyRotationScheduler } from '../identity/key-rotation.ts';
import { openPlatform, type Platform } from '../platform/platform.ts';
import { provisionTenant } from '../platform/provisioning.ts';
import { createTenantWorkers } from '../triggers/tenant-workers.ts';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';

const DEMO_TENANT = 'demo';

async function ensureDemoTenant(platform: Platform): Promise<string | undefined> {
  const marker = await platform.platformDb.query("SELECT 1 FROM platform_settings WHERE name = 'demo_tenant_created'");
  if (marker.rowCount !== 0) return undefined;
  const provisioned = await provisionTenant(platform.provisioning, { id: DEMO_TENANT, displayName: 'Demo tenant' });
  await platform.platformDb.query(
    "INSERT INTO platform_settings (name, value) VALUES ('demo_tenant_created', 'true') ON CONFLICT DO NOTHING",
  );
  const file = join(platform.config.dataDir, 'demo-admin-password');
  writeFileSync(file, `${provisioned.adminPassword}\n`, { mode: 0o600 });
  return `Created the demo tenant "${DEMO_TENANT}"; its admin is ${provisioned.adminEmail} with password ${provisioned.adminPassword} (also in ${file}).`;
}

function banner(config: Config, baseUrl: string, address: string): string {
  return `
Tansu is serving gRPC, Connect, gRPC-Web and REST on ${baseUrl}

  Sign a user up to the demo tenant (REST):
    curl -s -X POST ${baseUrl}/identity/api/demo/auth/signup -H 'content-type: application/json' \\
      -d '{"email":"ada@example.com","password":"correct horse battery staple"}'
  The same over gRPC:
    grpcurl -plaintext -d '{"tenant":"demo","email":"ada@example.com","password":"correct horse battery staple"}' \\
      ${address} tansu.identity.v1.TenantAuth/SignIn
  The tenant's keys:     ${baseUrl}/identity/demo/.well-known/jwks.json
  Platform admin token:  curl -s -X POST ${baseUrl}/identity/connect/token \\
      -d grant_type=password -d username=${config.adminEmail} -d password=<admin password>
      (the generated admin password is in ${config.dataDir}/admin-password)
  Health: ${baseUrl}/health/ready   Metrics: ${baseUrl}/metrics
`;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Invalid configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  let embedded: EmbeddedDatabase | undefined;
  let serverUrl = config.databaseUrl;
  if (!serverUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: join(config.dataDir, 'postgres'),
      onLog: (line) => logger.debug({ postgres: line.trim() }, 'embedded postgres'),
    });
    serverUrl = embedded.url;
    logger.info({ dataDir: config.dataDir }, 'embedded PostgreSQL started');
  }

  const platform = await openPlatform(config, serverUrl, logger);
  const app = await buildApp(platform);
  await app.fastify.listen({ port: config.port, host: config.host });
  const address = app.fastify.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const baseUrl = config.publicBaseUrl || `http://${hostForUrl}:${port}`;
  platform.setPublicBaseUrl(baseUrl);

  const workers = createTenantWorkers(platform);
  platform.provisioning.hooks = {
    afterProvision: (id) => workers.start(id),
    async beforeDelete(id) {
      await workers.stop(id);
      await platform.functions.recorder.flush(id);
      platform.functions.versions.forgetTenant(id);
    },
  };
  await workers.startAll();

  const demoMessage = config.createDemoTenant ? await ensureDemoTenant(platform) : undefined;
  if (demoMessage) process.stdout.write(`\n${demoMessage}\n`);
  process.stdout.write(banner(config, baseUrl, `${hostForUrl}:${port}`));
  const keyRotation = startKeyRotationScheduler(platform, config.keyRotationCheckSeconds);
  logger.info({ port, baseUrl }, 'listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    app.health.setStatus('', 'NOT_SERVING');
    await keyRotation.stop();
    await app.fastify.close().catch((error) => logger.error({ err: error }, 'closing the HTTP server failed'));
    await workers.stopAll().catch((error) => logger.error({ err: error }, 'stopping the trigger workers failed'));
    await platform.functions.close().catch((error) => logger.error({ err: error }, 'stopping the function runtime failed'));
    await platform.close().catch((error) => logger.error({ err: error }, 'closing database pools failed'));
    await embedded?.stop().catch((error) => logger.error({ err: error }, 'stopping embedded PostgreSQL failed'));
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  logger.fatal({ err: error }, 'server failed to start');
  process.exit(1);
});
