// Runs every check and test of the project, in order, stopping at the first failure:
// contracts lint, generated-code freshness, buf breaking against the newest v* tag (when one
// exists), type check, then the Jest suites (unit, end-to-end, SDK). Extra arguments go to
// Jest alone, e.g. `npm test -- test/tenants.test.ts`.
import './require-node.ts';

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const jestArgs = process.argv.slice(2);

function run(title: string, command: string, args: string[]): void {
  process.stdout.write(`\n== ${title}\n`);
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`\n${title} failed (exit ${result.status ?? result.signal}).\n`);
    process.exit(result.status ?? 1);
  }
}

/** The newest `v*` tag reachable from HEAD, the release whose contracts must not break. */
function latestReleaseTag(): string | undefined {
  const result = spawnSync('git', ['describe', '--tags', '--abbrev=0', '--match', 'v*'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

const focused = jestArgs.length > 0;
if (!focused) {
  run('buf lint', 'buf', ['lint']);
  const scratch = mkdtempSync(join(tmpdir(), 'tansu-gen-'));
  try {
    run('generated code is current', 'node', ['scripts/check-generated.ts', scratch]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const releaseTag = latestReleaseTag();
  if (releaseTag) {
    run(`buf breaking against ${releaseTag}`, 'buf', ['breaking', '--against', `.git#tag=${releaseTag}`]);
  } else {
    process.stdout.write('\n== buf breaking skipped: no v* release tag to compare against\n');
  }
  run('type check', 'tsc', ['-p', 'tsconfig.json']);
}
run('jest', 'node', [
  '--experimental-vm-modules',
  '--no-node-snapshot',
  '--disable-warning=ExperimentalWarning',
  'node_modules/jest/bin/jest.js',
  ...jestArgs,
]);
