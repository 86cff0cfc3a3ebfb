// Entry point of `npm run bench`: runs every benchmark in bench/ one after another, each as its
// own child process, and passes their output through. Benchmarks print figures only.
//
//   npm run bench                 all of them
//   npm run bench -- identity     only those whose file name contains one of the words given
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';

const filters = process.argv.slice(2);
const benches = readdirSync(resolve('bench'))
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
  .filter((file) => filters.length === 0 || filters.some((word) => file.includes(word)))
  .sort();

if (benches.length === 0) {
  console.error(`No benchmark in bench/ matches ${filters.join(', ')}`);
  process.exit(2);
}

let failed = 0;
for (const file of benches) {
  console.log(`\n=== bench/${file} ===`);
  const started = performance.now();
  // Each benchmark bounds its own loops; the timeout is a last resort against a hang.
  const result = spawnSync(resolve('node_modules/.bin/node'), ['--no-node-snapshot', `bench/${file}`], {
    stdio: 'inherit',
    timeout: 15 * 60_000,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  if (result.status !== 0) {
    failed++;
    console.log(`=== bench/${file} failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`}) after ${seconds} s ===`);
  } else {
    console.log(`=== bench/${file} done in ${seconds} s ===`);
  }
}
process.exit(failed === 0 ? 0 : 1);
