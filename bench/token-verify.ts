// Prints the latency of verifyAccessToken next to a bare jose.jwtVerify with the same key and
// token, so the cost of the guard clauses and claim checks is visible. Only prints figures.
// Run: node --no-node-snapshot bench/token-verify.ts [iterations]   (default 20000, max 100000)
import { importJWK, importPKCS8, jwtVerify, type CryptoKey } from 'jose';

import { generateSigningKey } from '../services/identity/signing-keys.ts';
import { issueAccessToken, verifyAccessToken } from '../services/identity/tokens.ts';

const iterations = Math.min(Number(process.argv[2] ?? 20_000), 100_000);
const warmup = Math.min(1_000, iterations);
const issuer = 'https://tansu.bench/identity/acme';
// Each measurement stops early after this long, whatever the iteration count.
const TIME_LIMIT_MILLISECONDS = 60_000;

const key = await generateSigningKey();
const privateKey = await importPKCS8(key.privatePem, 'RS256');
const publicKey = (await importJWK(key.publicJwk, 'RS256')) as CryptoKey;
const { token } = await issueAccessToken({
  signer: { kid: key.kid, privateKey },
  issuer,
  subject: 'user-1',
  tenant: 'acme',
  audience: 'acme-app',
  scope: 'openid profile',
  roles: ['User'],
  lifetimeSeconds: 3600,
});

async function measure(name: string, verify: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await verify();
  const samples: number[] = [];
  const deadline = performance.now() + TIME_LIMIT_MILLISECONDS;
  for (let i = 0; i < iterations && performance.now() < deadline; i++) {
    const start = process.hrtime.bigint();
    await verify();
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  samples.sort((a, b) => a - b);
  const p50 = percentile(samples, 0.5);
  const p95 = percentile(samples, 0.95);
  console.log(`${name.padEnd(18)} n ${samples.length}   p50 ${p50.toFixed(1)} µs   p95 ${p95.toFixed(1)} µs`);
  return [p50, p95];
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

console.log(`RS256 access token verification, ${iterations} sequential runs each, Node ${process.version}`);
const raw = await measure('jose.jwtVerify', () =>
  jwtVerify(token, publicKey, { algorithms: ['RS256'], issuer, audience: 'acme-app' }),
);
const ours = await measure('verifyAccessToken', () =>
  verifyAccessToken(token, { issuer, tenant: 'acme', audience: 'acme-app', resolveKey: async () => publicKey }),
);
console.log(`ratio verifyAccessToken / jose   p50 ${(ours[0] / raw[0]).toFixed(2)}   p95 ${(ours[1] / raw[1]).toFixed(2)}`);
