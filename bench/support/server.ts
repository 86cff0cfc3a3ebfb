// Starts what a benchmark measures: a PostgreSQL (embedded, unless DATABASE_URL names one) and a
// real Tansu server child process on a free loopback port. Used by the benchmarks only; the
// tests have their own starter in test/support/server.ts, which needs the Jest global setup.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../services/db/embedded.ts';

/** A PostgreSQL server for one benchmark run. */
export interface BenchDatabase {
  /** Superuser connection URL. */
  url: string;
  /** `embedded` when this run started it under a temporary directory. */
  kind: 'embedded' | 'external';
  /** Stops an embedded server and removes its directory; leaves an external one alone. */
  stop(): Promise<void>;
}

/** Uses DATABASE_URL when set, else starts an embedded PostgreSQL under a temporary directory. */
export async function startBenchDatabase(): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, kind: 'external', stop: async () => undefined };

  const dir = mkdtempSync(join(tmpdir(), 'tansu-bench-pg-'));
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres({ dataDir: join(dir, 'data') });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: embedded.url,
    kind: 'embedded',
    stop: async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Tansu server process started by a benchmark. */
export interface BenchServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** Database name prefix of this server's platform, template and tenant databases. */
  databasePrefix: string;
  /** Process id of the server, to read its CPU time from /proc. */
  pid: number;
  adminEmail: string;
  adminPassword: string;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its data directory. */
  stop(): Promise<void>;
}

const ADMIN_EMAIL = 'root@tansu.bench';
const ADMIN_PASSWORD = 'platform-admin-password-for-benchmarks';
const LISTEN_TIMEOUT_MILLISECONDS = 30_000;

/**
 * Starts `services/server/main.ts` as a child process on 127.0.0.1 with a free port, its own
 * database prefix and data directory, and no demo tenant. Resolves once it logs `listening`.
 */
export async function startBenchServer(databaseUrl: string): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tansu-bench-server-'));
  const databasePrefix = `b_${randomBytes(4).toString('hex')}_`;
  const child = spawn(resolve('node_modules/.bin/node'), ['--no-node-snapshot', 'services/server/main.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      TANSU_DB_PREFIX: databasePrefix,
      TANSU_DATA_DIR: dataDir,
      TANSU_ADMIN_EMAIL: ADMIN_EMAIL,
      TANSU_ADMIN_PASSWORD: ADMIN_PASSWORD,
      TANSU_DEMO_TENANT: 'false',
      // `info` is needed for the `listening` line; the server logs no line per request at info.
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Only the first 64 KiB of output are kept, for the error message of a failed start.
  let output = '';
  const keep = (text: string) => {
    if (output.length < 65_536) output += text;
  };
  child.stderr!.on('data', (chunk) => keep(String(chunk)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const stopChild = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not listen within ${LISTEN_TIMEOUT_MILLISECONDS} ms:\n${output}`)),
        LISTEN_TIMEOUT_MILLISECONDS,
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        keep(`${line}\n`);
        if (!line.startsWith('{')) return;
        try {
          const entry = JSON.parse(line);
          if (entry.msg === 'listening') {
            clearTimeout(timer);
            resolvePort(entry.port);
          }
        } catch {
          // Not a JSON log line.
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`server exited before listening:\n${output}`));
      });
    });
  } catch (error) {
    await stopChild();
    throw error;
  }

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    databasePrefix,
    pid: child.pid!,
    adminEmail: ADMIN_EMAIL,
    adminPassword: ADMIN_PASSWORD,
    stop: stopChild,
  };
}

/**
 * CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat.
 * Returns undefined where /proc is not available.
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticksPerSecond = 100; // USER_HZ, 100 on Linux on every common architecture.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** The value at `fraction` (0..1) of an ascending sorted array. */
export function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}
