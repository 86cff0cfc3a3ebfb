// Prints argon2id verification throughput with the parameters passwords.ts uses, sequentially
// and with several verifications in flight (libuv runs them on its thread pool, 4 threads
// unless UV_THREADPOOL_SIZE sets another number). Only prints figures.
// Run: node --no-node-snapshot bench/argon2-verify.ts [verifications]   (default 200, max 2000)
import { availableParallelism } from 'node:os';

import { verify } from '@node-rs/argon2';

import { ARGON2_PARAMETERS, hashPassword } from '../services/identity/passwords.ts';

const total = Math.min(Number(process.argv[2] ?? 200), 2_000);
const stored = await hashPassword('bench-password-1');
await verify(stored, 'bench-password-1');

// Each run stops early after this long, whatever the count.
const TIME_LIMIT_MILLISECONDS = 60_000;

async function run(concurrency: number): Promise<void> {
  let started = 0;
  const start = performance.now();
  const deadline = start + TIME_LIMIT_MILLISECONDS;
  const workers = Array.from({ length: concurrency }, async () => {
    while (started < total && performance.now() < deadline) {
      started++;
      await verify(stored, 'bench-password-1');
    }
  });
  await Promise.all(workers);
  const seconds = (performance.now() - start) / 1000;
  const perSecond = started / seconds;
  const meanLatency = (seconds * 1000 * concurrency) / started;
  console.log(
    `concurrency ${String(concurrency).padStart(2)}: ${perSecond.toFixed(1)} verifications/s, ` +
      `mean latency ${meanLatency.toFixed(1)} ms`,
  );
}

const { memoryCost, timeCost, parallelism } = ARGON2_PARAMETERS;
console.log(
  `argon2id m=${memoryCost} KiB t=${timeCost} p=${parallelism}, ${total} verifications per run, ` +
    `${availableParallelism()} CPUs, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`,
);
for (const concurrency of [1, 4, 8]) await run(concurrency);
