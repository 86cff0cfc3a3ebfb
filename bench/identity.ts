// Identity benchmarks against a real Tansu server child process over loopback HTTP. Prints
// figures next to their targets; asserts nothing.
//
//   (a) access-token verification: verifyAccessToken vs a bare jose.jwtVerify, in this
//       process, on a token the server issued and with its published key. Also GetCurrentUser
//       end to end over REST (fetch, keep-alive) and Connect (@connectrpc/connect-node, HTTP/1.1)
//   (b) sign-in throughput over REST vs bare argon2id verification with the same parameters
//       and the same concurrency, in this process
//   (c) refresh throughput over REST: sequential rotation chains over several sessions at once
//   (d) provisioning latency of 50 tenants through POST /platform/api/tenants
//
//   node_modules/.bin/node --no-node-snapshot bench/identity.ts [part...]   (parts: a b c d)
//
// Without DATABASE_URL it starts an embedded PostgreSQL under a temporary directory. Every loop
// stops at a count and at a deadline, whichever comes first.
import { availableParallelism, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';

import { createClient } from '@connectrpc/connect';
import pg from 'pg';
import { createConnectTransport } from '@connectrpc/connect-node';
import { verify as argon2Verify } from '@node-rs/argon2';
import { decodeJwt, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';

import { TenantAuth } from '#gen/tansu/identity/v1/auth_pb.js';
import { ARGON2_PARAMETERS, hashPassword } from '../services/identity/passwords.ts';
import { generateSigningKey } from '../services/identity/signing-keys.ts';
import { verifyAccessToken } from '../services/identity/tokens.ts';
import { templateDatabaseName } from '../services/platform/tenant-id.ts';
import { percentile, processCpuSeconds, startBenchDatabase, startBenchServer, type BenchServer } from './support/server.ts';

const VERIFY_ITERATIONS = 20_000;
const HTTP_LATENCY_ITERATIONS = 2_000;
const SIGN_IN_COUNT = 200;
const REFRESH_SESSIONS = 8;
const REFRESH_COUNT = 4_000;
const PROVISION_COUNT = 50;
const PART_SECONDS = 30;
const PROVISION_SECONDS = 300;
const CORES = availableParallelism();
const SIGN_IN_CONCURRENCY = CORES;
const TENANT = 'bench';

const parts = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['a', 'b', 'c', 'd']);

interface Json {
  [key: string]: any;
}

async function post(url: string, body: unknown, token?: string): Promise<Json> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await response.json();
  if (response.status !== 200) throw new Error(`POST ${url}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function platformToken(server: BenchServer): Promise<string> {
  const response = await fetch(`${server.baseUrl}/identity/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: server.adminEmail, password: server.adminPassword }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`platform sign-in: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

function summary(samples: number[]): { p50: number; p95: number; max: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted[sorted.length - 1], n: sorted.length };
}

/** Prints the 1-minute load average, because other work on the machine skews every figure. */
function load(when: string): void {
  console.log(`  load average (1 min) ${when}: ${loadavg()[0].toFixed(2)} on ${CORES} CPUs`);
}

function verdict(met: boolean): string {
  return met ? 'MET' : 'MISSED';
}

/** Runs `operation` sequentially until `count` runs or `seconds` pass, and returns the latencies in ms. */
async function latencies(count: number, seconds: number, operation: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const start = performance.now();
    await operation();
    samples.push(performance.now() - start);
  }
  return samples;
}

/**
 * Runs `operation` from `concurrency` loops until `count` runs have started or `seconds` pass;
 * returns completed runs per second of wall time.
 */
async function throughput(
  concurrency: number,
  count: number,
  seconds: number,
  operation: (worker: number) => Promise<unknown>,
): Promise<{ perSecond: number; done: number; seconds: number }> {
  let started = 0;
  let done = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (started < count && performance.now() < deadline) {
        started++;
        await operation(worker);
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { perSecond: done / elapsed, done, seconds: elapsed };
}

/** Busy (non-idle) CPU seconds of the whole machine so far, from /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const total = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0);
    return (total - ticks[3] - ticks[4]) / 100;
  } catch {
    return undefined;
  }
}

async function tokenVerification(server: BenchServer, accessToken: string): Promise<void> {
  console.log('\n(a) access-token verification');
  const jwks = (await (await fetch(`${server.baseUrl}/identity/${TENANT}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
  const keys = new Map<string, CryptoKey>();
  for (const jwk of jwks.keys) keys.set(jwk.kid!, (await importJWK(jwk, 'RS256')) as CryptoKey);
  const issuer = decodeJwt(accessToken).iss!;
  const kid = JSON.parse(Buffer.from(accessToken.split('.')[0], 'base64url').toString()).kid as string;
  const key = keys.get(kid)!;

  // Once its key cache is warm, the server resolves a key with a map lookup, and so does this.
  const ours = () =>
    verifyAccessToken(accessToken, { issuer, tenant: TENANT, resolveKey: async (id) => keys.get(id) });
  const raw = () => jwtVerify(accessToken, key, { algorithms: ['RS256'], issuer });

  // Warm both up, then measure in alternating rounds so that drift hits both alike.
  for (let i = 0; i < 2_000; i++) {
    await raw();
    await ours();
  }
  const rawSamples: number[] = [];
  const ourSamples: number[] = [];
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    rawSamples.push(...(await latencies(VERIFY_ITERATIONS / rounds, PART_SECONDS / rounds / 2, raw)));
    ourSamples.push(...(await latencies(VERIFY_ITERATIONS / rounds, PART_SECONDS / rounds / 2, ours)));
  }
  const rawStats = summary(rawSamples);
  const ourStats = summary(ourSamples);
  const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
  console.log(`  jose.jwtVerify        n ${rawStats.n}  p50 ${us(rawStats.p50)}  p95 ${us(rawStats.p95)}`);
  console.log(`  verifyAccessToken     n ${ourStats.n}  p50 ${us(ourStats.p50)}  p95 ${us(ourStats.p95)}`);
  const ratio95 = ourStats.p95 / rawStats.p95;
  console.log(`  ratio ours/jose       p50 ${(ourStats.p50 / rawStats.p50).toFixed(2)}  p95 ${ratio95.toFixed(2)}`);
  console.log(`  target p95 < 0.5 ms: ${verdict(ourStats.p95 < 0.5)};  target ratio <= 1.5: ${verdict(ratio95 <= 1.5)}`);

  const me = `${server.baseUrl}/identity/api/${TENANT}/auth/me`;
  const restMe = async () => {
    const response = await fetch(me, { headers: { authorization: `Bearer ${accessToken}` } });
    if (response.status !== 200) throw new Error(`GetCurrentUser: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
  };
  const client = createClient(TenantAuth, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' }));
  const connectMe = () =>
    client.getCurrentUser({ tenant: TENANT }, { headers: { authorization: `Bearer ${accessToken}` } });
  await latencies(200, 10, restMe);
  await latencies(200, 10, connectMe);
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  for (const [name, operation] of [
    ['GetCurrentUser REST', restMe],
    ['GetCurrentUser Connect', connectMe],
  ] as const) {
    const s = summary(await latencies(HTTP_LATENCY_ITERATIONS, PART_SECONDS, operation));
    console.log(`  ${name.padEnd(22)} n ${s.n}  p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  (sequential, one connection)`);
  }
  load('after');
}

async function signInThroughput(server: BenchServer, email: string, password: string): Promise<void> {
  console.log(`\n(b) sign-in throughput, concurrency ${SIGN_IN_CONCURRENCY}, at most ${SIGN_IN_COUNT} per run`);
  const { memoryCost, timeCost, parallelism } = ARGON2_PARAMETERS;
  console.log(
    `  argon2id m=${memoryCost} KiB t=${timeCost} p=${parallelism}; ` +
      `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'} in both processes`,
  );
  const stored = await hashPassword(password);
  const raw = () => argon2Verify(stored, password).then((ok) => {
    if (!ok) throw new Error('argon2 verify returned false');
  });
  const signIn = () => post(`${server.baseUrl}/identity/api/${TENANT}/auth/signin`, { email, password });
  await throughput(SIGN_IN_CONCURRENCY, 20, 10, raw);
  await throughput(SIGN_IN_CONCURRENCY, 20, 10, signIn);

  // raw, server, raw: the mean of the two bare runs is the baseline, and their spread shows
  // how steady the machine was.
  const raw1 = await throughput(SIGN_IN_CONCURRENCY, SIGN_IN_COUNT, PART_SECONDS, raw);
  const server1 = await throughput(SIGN_IN_CONCURRENCY, SIGN_IN_COUNT, PART_SECONDS, signIn);
  const raw2 = await throughput(SIGN_IN_CONCURRENCY, SIGN_IN_COUNT, PART_SECONDS, raw);
  const baseline = (raw1.perSecond + raw2.perSecond) / 2;
  console.log(`  bare argon2id verify  ${raw1.perSecond.toFixed(1)}/s then ${raw2.perSecond.toFixed(1)}/s (n ${raw1.done}, ${raw2.done})`);
  console.log(`  SignIn over REST      ${server1.perSecond.toFixed(1)}/s (n ${server1.done})`);
  const overhead = 1 - server1.perSecond / baseline;
  console.log(`  server overhead 1 - server/bare = ${(overhead * 100).toFixed(1)} %;  target <= 25 %: ${verdict(overhead <= 0.25)}`);
  // For context only: more requests in flight than cores let argon2id use the cores while
  // other sign-ins wait for PostgreSQL.
  const wider = await throughput(SIGN_IN_CONCURRENCY * 2, SIGN_IN_COUNT, PART_SECONDS, signIn);
  console.log(`  SignIn over REST at concurrency ${SIGN_IN_CONCURRENCY * 2}: ${wider.perSecond.toFixed(1)}/s (n ${wider.done}; context, not the target)`);
  load('after');
}

async function refreshThroughput(server: BenchServer, email: string, password: string): Promise<void> {
  console.log(`\n(c) refresh throughput, ${REFRESH_SESSIONS} sessions rotating at once, at most ${REFRESH_COUNT}`);
  const url = `${server.baseUrl}/identity/api/${TENANT}/auth/refresh`;
  const tokens: string[] = [];
  for (let i = 0; i < REFRESH_SESSIONS; i++) {
    tokens.push((await post(`${server.baseUrl}/identity/api/${TENANT}/auth/signin`, { email, password })).refreshToken);
  }
  const rotate = async (session: number) => {
    tokens[session] = (await post(url, { tenant: TENANT, refreshToken: tokens[session] })).refreshToken;
  };
  await throughput(REFRESH_SESSIONS, 200, 10, (worker) => rotate(worker));

  const serverCpuBefore = processCpuSeconds(server.pid);
  const machineBefore = machineBusySeconds();
  const result = await throughput(REFRESH_SESSIONS, REFRESH_COUNT, PART_SECONDS, (worker) => rotate(worker));
  const serverCpu = (processCpuSeconds(server.pid) ?? NaN) - (serverCpuBefore ?? NaN);
  const machineCpu = (machineBusySeconds() ?? NaN) - (machineBefore ?? NaN);
  console.log(`  Refresh over REST     ${result.perSecond.toFixed(0)}/s wall (n ${result.done} in ${result.seconds.toFixed(1)} s)`);
  console.log(
    `  server process CPU    ${serverCpu.toFixed(1)} s = ${(serverCpu / result.seconds).toFixed(2)} cores busy; ` +
      `${(result.done / serverCpu).toFixed(0)} refreshes per server CPU-second`,
  );
  console.log(
    `  whole machine CPU     ${machineCpu.toFixed(1)} s busy of ${(result.seconds * CORES).toFixed(1)} s ` +
      `(server, PostgreSQL and this client on ${CORES} cores)`,
  );
  // The server is one Node process whose main thread handles every request, so it counts as one core.
  console.log(`  per core (one server process = one core): ${result.perSecond.toFixed(0)}/s;  target >= 500/s: ${verdict(result.perSecond >= 500)}`);
  load('after');
}

async function provisioning(server: BenchServer, adminToken: string, databaseUrl: string): Promise<string[]> {
  console.log(`\n(d) provisioning ${PROVISION_COUNT} tenants, one after another`);
  const ids: string[] = [];
  const samples: number[] = [];
  const deadline = performance.now() + PROVISION_SECONDS * 1000;
  for (let i = 0; i < PROVISION_COUNT && performance.now() < deadline; i++) {
    const id = `prov-${String(i).padStart(3, '0')}`;
    const start = performance.now();
    await post(`${server.baseUrl}/platform/api/tenants`, { id, displayName: `Tenant ${id}` }, adminToken);
    samples.push(performance.now() - start);
    ids.push(id);
  }
  const s = summary(samples);
  console.log(`  ProvisionTenant REST  n ${s.n}  p50 ${s.p50.toFixed(0)} ms  p95 ${s.p95.toFixed(0)} ms  max ${s.max.toFixed(0)} ms`);
  console.log(`  target p95 < 300 ms: ${verdict(s.p95 < 300)}`);

  // Three steps of provisioning, timed alone from this process to show where the time goes.
  const keygen = summary(await latencies(20, 60, () => generateSigningKey()));
  const hashing = summary(await latencies(20, 30, () => hashPassword('generated-admin-password')));
  const copies = summary(await createDatabaseLatencies(databaseUrl, templateDatabaseName(server.databasePrefix)));
  console.log('  steps of provisioning timed alone from this process:');
  console.log(`    RSA-2048 key generation            p50 ${keygen.p50.toFixed(0)} ms  p95 ${keygen.p95.toFixed(0)} ms  max ${keygen.max.toFixed(0)} ms`);
  console.log(`    argon2id hash                      p50 ${hashing.p50.toFixed(0)} ms  p95 ${hashing.p95.toFixed(0)} ms`);
  console.log(`    CREATE DATABASE from the template  p50 ${copies.p50.toFixed(0)} ms  p95 ${copies.p95.toFixed(0)} ms  max ${copies.max.toFixed(0)} ms`);
  load('after');
  return ids;
}

/** Times CREATE DATABASE ... TEMPLATE, the first step of provisioning, 10 times and drops each copy. */
async function createDatabaseLatencies(databaseUrl: string, template: string): Promise<number[]> {
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `${template}_copy_${i}`;
      const start = performance.now();
      await client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
      samples.push(performance.now() - start);
      await client.query(`DROP DATABASE ${name}`);
    }
    return samples;
  } finally {
    await client.end();
  }
}

console.log(`Identity benchmarks, Node ${process.version}, ${CORES} CPUs, parts ${[...parts].join(' ')}`);
const database = await startBenchDatabase();
console.log(`PostgreSQL: ${database.kind}`);
load('at start');
let server: BenchServer | undefined;
try {
  server = await startBenchServer(database.url);
  const adminToken = await platformToken(server);
  const tenant = await post(`${server.baseUrl}/platform/api/tenants`, { id: TENANT, displayName: 'Bench' }, adminToken);
  const email: string = tenant.adminEmail;
  const password: string = tenant.adminPassword;
  const signedIn = await post(`${server.baseUrl}/identity/api/${TENANT}/auth/signin`, { email, password });

  const created = [TENANT];
  if (parts.has('a')) await tokenVerification(server, signedIn.accessToken);
  if (parts.has('b')) await signInThroughput(server, email, password);
  if (parts.has('c')) await refreshThroughput(server, email, password);
  if (parts.has('d')) created.push(...(await provisioning(server, adminToken, database.url)));

  // On a PostgreSQL this run did not start, remove the tenant databases it created.
  if (database.kind === 'external') {
    for (const id of created) {
      await fetch(`${server.baseUrl}/platform/api/tenants/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminToken}` },
      });
    }
  }
} finally {
  await server?.stop();
  await database.stop();
}
