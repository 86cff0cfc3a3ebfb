// Measures warm HTTP calls of an echo function on a Tansu server and on workerd (the npm
// package), side by side in one run. Then it measures the first call after a deploy and
// the memory of idle tenants with a loaded function. Every loop is bounded by a request count
// and a 60 s deadline, and all traffic goes to 127.0.0.1.
//
//   node_modules/.bin/node --no-node-snapshot bench/functions-http.ts
//
// Settings: REQUESTS (sequential calls for latency, default 2000), CONCURRENCY (default 16)
// and THROUGHPUT_REQUESTS (default 8000) for requests/s, TENANTS (idle tenants, default 20).
// Without DATABASE_URL it starts an embedded PostgreSQL under a temporary directory. WORKERD
// is the workerd binary (default `node_modules/.bin/workerd`); without it the workerd part is
// skipped.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import pg from 'pg';

import { startEmbeddedPostgres } from '../services/db/embedded.ts';
import { platformAdminToken, provisionTenant, rest } from '../test/support/rest.ts';
import { startServer } from '../test/support/server.ts';

const requests = Number(process.env.REQUESTS ?? 2000);
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const throughputRequests = Number(process.env.THROUGHPUT_REQUESTS ?? 8000);
const idleTenants = Number(process.env.TENANTS ?? 20);
const deadlineMs = 60_000;
const echoBody = JSON.stringify({ hello: 'world', n: 1 });

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

function post(url: URL, headers: Record<string, string>): Promise<number> {
  return new Promise((done, fail) => {
    const request = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } },
      (response) => {
        response.resume();
        response.on('end', () => done(response.statusCode ?? 0));
      },
    );
    request.on('error', fail);
    request.end(echoBody);
  });
}

/** Sequential calls for latency, then `concurrency` parallel loops for requests per second. */
async function measure(label: string, url: URL, headers: Record<string, string>) {
  for (let i = 0; i < 200; i++) await post(url, headers);

  const latencies: number[] = [];
  const latencyDeadline = Date.now() + deadlineMs;
  for (let i = 0; i < requests && Date.now() < latencyDeadline; i++) {
    const started = performance.now();
    const status = await post(url, headers);
    latencies.push(performance.now() - started);
    if (status !== 200) throw new Error(`${label}: status ${status}`);
  }
  latencies.sort((a, b) => a - b);

  let sent = 0;
  const throughputDeadline = Date.now() + deadlineMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < throughputRequests && Date.now() < throughputDeadline) {
        sent += 1;
        const status = await post(url, headers);
        if (status !== 200) throw new Error(`${label}: status ${status}`);
      }
    }),
  );
  const perSecond = sent / ((performance.now() - started) / 1000);
  return { label, p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), perSecond };
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function startWorkerd(directory: string) {
  const binary = resolve(process.env.WORKERD ?? 'node_modules/.bin/workerd');
  if (!existsSync(binary)) return undefined;
  const port = await freePort();
  writeFileSync(
    join(directory, 'echo.js'),
    'export default { async fetch(request) {\n' +
      '  return new Response(await request.text(), { headers: { "content-type": "application/json" } });\n' +
      '} };\n',
  );
  writeFileSync(
    join(directory, 'config.capnp'),
    'using Workerd = import "/workerd/workerd.capnp";\n' +
      'const config :Workerd.Config = (\n' +
      '  services = [(name = "main", worker = .echo)],\n' +
      `  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],\n` +
      ');\n' +
      'const echo :Workerd.Worker = (\n' +
      '  modules = [(name = "worker", esModule = embed "echo.js")],\n' +
      '  compatibilityDate = "2024-09-01",\n' +
      ');\n',
  );
  const child = spawn(binary, ['serve', join(directory, 'config.capnp')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = new URL(`http://127.0.0.1:${port}/`);
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await post(url, {});
      return { url, stop: () => child.kill('SIGTERM') };
    } catch {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error('workerd did not start within 10 s');
}

async function residentBytes(baseUrl: string): Promise<number> {
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  const match = /^process_resident_memory_bytes (\d+)/m.exec(metrics);
  return Number(match?.[1] ?? 0);
}

const directory = mkdtempSync(join(tmpdir(), 'tansu-bench-'));
let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
let serverUrl = process.env.DATABASE_URL;
if (!serverUrl) {
  embedded = await startEmbeddedPostgres({ dataDir: join(directory, 'postgres') });
  serverUrl = embedded.url;
}
// test/support/server.ts reads the PostgreSQL URL from this variable.
process.env.TANSU_TEST_DATABASE_URL = serverUrl;

const server = await startServer();
const workerd = await startWorkerd(directory);
try {
  // Lifts the per-tenant execution rate limit for the run, before any tenant reads its settings.
  const platformDbUrl = new URL(serverUrl);
  platformDbUrl.pathname = `/${server.databasePrefix}platform`;
  const platformDb = new pg.Client(platformDbUrl.toString());
  await platformDb.connect();
  await platformDb.query(
    `INSERT INTO platform_settings (name, value) VALUES ('functionExecutionsPerMinute', '100000000')
     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
  );
  await platformDb.end();

  const adminToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const credentials = await provisionTenant(server.baseUrl, adminToken, 'bench');
  const signIn = await rest('POST', `${server.baseUrl}/identity/api/bench/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  const token = signIn.body.accessToken as string;
  const deploy = (name: string, source: string) =>
    rest('POST', `${server.baseUrl}/functions/api/bench/functions/${name}/deploy`, { token, body: { source } });
  await deploy('echo', 'export default (request) => request.body;');

  const results = [await measure('tansu', new URL(`${server.baseUrl}/functions/bench/echo`), { authorization: `Bearer ${token}` })];
  if (workerd) results.push(await measure('workerd', workerd.url, {}));

  // Cold: the first call after each deploy runs a version no worker has loaded yet.
  const cold: number[] = [];
  for (let i = 0; i < 40; i++) {
    await deploy('cold', `export default (request) => ({ deploy: ${i}, body: request.body });`);
    const started = performance.now();
    const status = await post(new URL(`${server.baseUrl}/functions/bench/cold`), { authorization: `Bearer ${token}` });
    cold.push(performance.now() - started);
    if (status !== 200) throw new Error(`cold call: status ${status}`);
  }
  cold.sort((a, b) => a - b);

  // Idle tenants: provision, deploy and call once, then compare resident memory.
  const before = await residentBytes(server.baseUrl);
  for (let i = 0; i < idleTenants; i++) {
    const id = `idle-${i}`;
    const tenant = await provisionTenant(server.baseUrl, adminToken, id);
    const session = await rest('POST', `${server.baseUrl}/identity/api/${id}/auth/signin`, {
      body: { email: tenant.adminEmail, password: tenant.adminPassword },
    });
    const tenantToken = session.body.accessToken as string;
    await rest('POST', `${server.baseUrl}/functions/api/${id}/functions/echo/deploy`, {
      token: tenantToken,
      body: { source: 'export default (request) => request.body;' },
    });
    await post(new URL(`${server.baseUrl}/functions/${id}/echo`), { authorization: `Bearer ${tenantToken}` });
  }
  await new Promise((done) => setTimeout(done, 2000));
  const after = await residentBytes(server.baseUrl);

  console.log('warm echo over HTTP/1.1 keep-alive, same machine, same run:');
  for (const result of results) {
    console.log(
      `  ${result.label.padEnd(8)} p50 ${result.p50.toFixed(2)} ms  p95 ${result.p95.toFixed(2)} ms  ` +
        `${result.perSecond.toFixed(0)} requests/s (concurrency ${concurrency})`,
    );
  }
  if (results.length === 2) {
    console.log(`  throughput ratio tansu/workerd: ${(results[0]!.perSecond / results[1]!.perSecond).toFixed(2)}`);
    console.log(`  p95 ratio tansu/workerd: ${(results[0]!.p95 / results[1]!.p95).toFixed(2)}`);
  } else {
    console.log('  workerd: no binary at WORKERD or node_modules/.bin/workerd, so there is no comparison');
  }
  console.log(`first call after deploy (${cold.length} deploys): p50 ${percentile(cold, 0.5).toFixed(2)} ms  p95 ${percentile(cold, 0.95).toFixed(2)} ms`);
  console.log(
    `resident memory per idle tenant with a loaded function: ${((after - before) / idleTenants / 1024 / 1024).toFixed(2)} MiB ` +
      `(${idleTenants} tenants, server RSS ${(before / 1048576).toFixed(0)} -> ${(after / 1048576).toFixed(0)} MiB)`,
  );
} finally {
  workerd?.stop();
  await server.stop();
  await embedded?.stop();
  agent.destroy();
  rmSync(directory, { recursive: true, force: true });
}
