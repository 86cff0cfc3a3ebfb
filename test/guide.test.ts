import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SMTPServer } from 'smtp-server';

import { TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { Clients } from '#gen/tansu/identity/v1/clients_pb.js';
import { Invitations } from '#gen/tansu/identity/v1/invitations_pb.js';
import { OAuthProviders } from '#gen/tansu/identity/v1/oauth_providers_pb.js';
import { Settings } from '#gen/tansu/identity/v1/settings_pb.js';
import { SigningKeys } from '#gen/tansu/identity/v1/signing_keys_pb.js';
import { Users } from '#gen/tansu/identity/v1/users_pb.js';
import { PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { Tenants } from '#gen/tansu/platform/v1/tenants_pb.js';
import { collectHttpRules } from '../services/gateway/http-rules.ts';
import { startServer, type TestServer } from './support/server.ts';

/** Returns the ```sh blocks of docs/guide.md in order. ```shell blocks are shown, not run. */
function guideBlocks(): string[] {
  const guide = readFileSync('docs/guide.md', 'utf8');
  return [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]);
}

/** Returns the method and path of every curl call in the guide's sh and shell blocks. */
function guideCalls(): { verb: string; path: string }[] {
  const guide = readFileSync('docs/guide.md', 'utf8');
  const commands = [...guide.matchAll(/```(?:sh|shell)\n([\s\S]*?)```/g)]
    .flatMap((match) => match[1].replace(/\\\n\s*/g, ' ').split('\n'))
    .filter((line) => /\bcurl\b/.test(line));
  return commands.map((command) => {
    const verb = /-X (\w+)/.exec(command)?.[1] ?? (/ -d /.test(command) ? 'POST' : 'GET');
    const url = /"?\$BASE(\/[^\s"?]*)/.exec(command)?.[1];
    if (!url) throw new Error(`no $BASE URL in guide command: ${command}`);
    return { verb, path: url };
  });
}

/** Runs a bash script, killing it after `timeoutMs`; resolves with its exit status and output. */
function runBash(script: string, timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('admin guide', () => {
  let server: TestServer;
  let smtp: SMTPServer;
  let workDir: string;
  const recipients: string[] = [];

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, done) {
        recipients.push(...session.envelope.rcptTo.map((entry) => entry.address));
        stream.on('data', () => undefined);
        stream.on('end', () => done());
      },
    });
    await new Promise<void>((done) => smtp.listen(0, '127.0.0.1', done));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    workDir = mkdtempSync(join(tmpdir(), 'tansu-guide-'));
    server = await startServer({
      dataDir: join(workDir, '.data'),
      env: {
        TANSU_DEMO_TENANT: 'false',
        TANSU_ADMIN_EMAIL: '',
        TANSU_ADMIN_PASSWORD: '',
        TANSU_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      },
    });
  });

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((done) => smtp?.close(() => done()));
    rmSync(workDir, { recursive: true, force: true });
  });

  test('every curl path is an http rule', () => {
    const rules = collectHttpRules([
      TenantAuth, Clients, Invitations, OAuthProviders, Settings, SigningKeys, Users, PlatformAuth, Tenants,
    ]).map((rule) => ({
      verb: rule.verb,
      pattern: new RegExp(`^${rule.path.replace(/\{[^}]+\}/g, '[^/:]+').replace(/\./g, '\\.')}$`),
    }));
    const calls = guideCalls();

    expect(calls.length).toBeGreaterThanOrEqual(30);
    for (const call of calls) {
      // Shell variables such as $USER_ID stand for one path segment.
      const path = call.path.replace(/\$[A-Z_]+/g, 'x');
      const matched = rules.some((rule) => rule.verb === call.verb && rule.pattern.test(path));
      expect(`${call.verb} ${call.path} ${matched ? 'matches' : 'matches no'} http rule`).toBe(
        `${call.verb} ${call.path} matches http rule`,
      );
    }
  });

  test('every sh block succeeds as written', async () => {
    const blocks = guideBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(15);

    // Only the address and the data directory change. curl gets --fail-with-body, so any
    // non-2xx response stops the script and shows the error body.
    const script = [
      'set -euo pipefail',
      'curl() { command curl --fail-with-body "$@"; echo; }',
      ...blocks.map((block) =>
        block.replaceAll('localhost:8080', server.address).replaceAll('.data/', `${workDir}/.data/`),
      ),
    ].join('\n');
    // Asynchronous, because the SMTP server above runs on this test's event loop.
    const result = await runBash(script, 60_000);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const output = result.stdout;
    expect(output).toContain('"tenants"');
    expect(output).toContain('"sources"');
    expect(output).toContain('"keys"');
    expect(output).toContain('"clients"');
    expect(output).toContain('"providers"');
    expect(output).toContain('"invitations"');
    expect(output).toContain('"entries"');
    expect(recipients).toEqual(['grace@example.com']);
  });
});
