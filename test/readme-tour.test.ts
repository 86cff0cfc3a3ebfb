import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { startServer, type TestServer } from './support/server.ts';
import { grpcurlPath } from './support/tools.ts';

/** The shell commands between the tour markers of README.md, continuation lines joined. */
function tourCommands(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const block = readme.split('<!-- tour:start -->')[1]?.split('<!-- tour:end -->')[0];
  if (!block) throw new Error('README.md has no tour block');
  const script = block.replace(/```sh\n|```/g, '').replace(/\\\n\s*/g, ' ');
  return script
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
}

describe('README tour', () => {
  let server: TestServer;
  let workDir: string;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'tansu-tour-'));
    server = await startServer({
      dataDir: join(workDir, '.data'),
      env: { TANSU_DEMO_TENANT: 'true', TANSU_ADMIN_EMAIL: '', TANSU_ADMIN_PASSWORD: '' },
    });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('every command succeeds verbatim', () => {
    const commands = tourCommands();
    expect(commands.length).toBeGreaterThanOrEqual(8);
    // The commands run from the repository root, as a reader would, with only the address and
    // the data directory pointed at this test's server.
    const script = [
      'set -e',
      ...commands.map((command) => command.replaceAll('localhost:8080', server.address).replaceAll('.data/', `${workDir}/.data/`)),
    ].join('\n');
    const result = spawnSync('bash', ['-c', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: `${dirname(grpcurlPath())}:${join(process.cwd(), 'node_modules/.bin')}:${process.env.PATH}` },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const output = result.stdout;
    expect(output).toContain('"accessToken"');
    expect(output).toContain('"keys"');
    expect(output).toContain('"jwks_uri"');
    expect(output).toContain('"adminPassword"');
    expect(output).toContain('"id":"example"');
    expect(output).toContain('tansu.identity.v1.TenantAuth');
    expect(output).toContain('{"hello":"Ada"}');
    expect(output).toContain('"eventPattern":"document.created"');
    expect(output).toContain('"collection":"notes"');
  });
});
