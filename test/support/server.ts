import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { testDatabaseUrl, uniquePrefix } from './database.ts';

/** A Tansu server process started by a test. */
export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `127.0.0.1:<port>`, as grpcurl takes it. */
  address: string;
  port: number;
  /** Database name prefix of this server's platform and tenants. */
  databasePrefix: string;
  adminEmail: string;
  adminPassword: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Stops the server gracefully (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL) and waits for it. */
  kill(): Promise<void>;
  process: ChildProcess;
}

/** Options for startServer. */
export interface StartServerOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Reuse a database prefix, e.g. to restart a killed server on the same databases. */
  databasePrefix?: string;
  /** Reuse a data directory (master key). */
  dataDir?: string;
}

const ADMIN_EMAIL = 'root@tansu.test';
const ADMIN_PASSWORD = 'platform-admin-password-for-tests';

/**
 * Starts `services/server/main.ts` as a child process on a free port against the test run's
 * PostgreSQL, with its own database prefix and data directory, and waits until it listens.
 */
export async function startServer(options: StartServerOptions = {}): Promise<TestServer> {
  const databasePrefix = options.databasePrefix ?? uniquePrefix();
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tansu-test-'));
  const nodeBinary = resolve('node_modules/.bin/node');
  const child = spawn(nodeBinary, ['--no-node-snapshot', 'services/server/main.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: testDatabaseUrl(),
      TANSU_DB_PREFIX: databasePrefix,
      TANSU_DATA_DIR: dataDir,
      TANSU_ADMIN_EMAIL: ADMIN_EMAIL,
      TANSU_ADMIN_PASSWORD: ADMIN_PASSWORD,
      TANSU_DEMO_TENANT: 'false',
      LOG_LEVEL: process.env.TANSU_TEST_LOG_LEVEL ?? 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 30 s:\n${output}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      if (!line.startsWith('{')) return;
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolvePort(entry.port);
        }
      } catch {
        // Not a log line.
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with code ${code} before listening:\n${output}`));
    });
  });

  const waitForExit = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    port,
    databasePrefix,
    adminEmail: ADMIN_EMAIL,
    adminPassword: ADMIN_PASSWORD,
    output: () => output,
    stop: async () => {
      await waitForExit('SIGTERM');
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    kill: () => waitForExit('SIGKILL'),
    process: child,
  };
}
