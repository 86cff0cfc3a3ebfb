import { spawn } from 'node:child_process';

import { setPlatformSetting } from '../../test/support/database.ts';
import { platformAdminToken, provisionTenant } from '../../test/support/rest.ts';
import { startServer, type TestServer } from '../../test/support/server.ts';

// Builds the Kotlin SDK with Maven and runs its integration tests (TenantAuthIT) against a real
// server over Connect JSON, Connect proto, gRPC and gRPC-Web. A cold Maven repository makes
// the first run download the toolchain from Maven Central, hence the long timeout.
describe('Kotlin SDK', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
    // The integration tests sign up more users from 127.0.0.1 than the default hourly limit.
    await setPlatformSetting(server.databasePrefix, 'signupsPerIpPerHour', 1000);
    const token = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
    await provisionTenant(server.baseUrl, token, 'kotlin');
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('TenantAuthIT passes against the server', async () => {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((done) => {
      const child = spawn('bash', ['scripts/test-kotlin-sdk.sh'], {
        env: { ...process.env, TANSU_URL: server.baseUrl, TANSU_TENANT: 'kotlin' },
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('exit', (code) => done({ code, output }));
    });
    if (code !== 0) throw new Error(`Maven failed with exit code ${code}:\n${output.slice(-6000)}`);
    expect(code).toBe(0);
  }, 600_000);
});
