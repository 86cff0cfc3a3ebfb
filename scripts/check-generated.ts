// Regenerates the TypeScript code from the protos into a scratch directory and fails when it
// differs from the committed sdk/ts/src/gen, so stale generated code cannot land.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const scratch = process.argv[2];
if (!scratch) throw new Error('usage: check-generated.ts SCRATCH_DIR');

const committed = 'sdk/ts/src/gen';
const result = spawnSync(
  'buf',
  ['generate', '--template', JSON.stringify(generationTemplate(scratch))],
  { stdio: 'inherit' },
);
if (result.status !== 0) process.exit(result.status ?? 1);

function generationTemplate(out: string) {
  const template = readFileSync('buf.gen.yaml', 'utf8');
  if (!template.includes(`out: ${committed}`)) {
    throw new Error(`buf.gen.yaml no longer writes to ${committed}; update this check`);
  }
  return {
    version: 'v2',
    inputs: [{ directory: 'proto' }, { directory: 'third_party' }],
    plugins: [
      { local: 'protoc-gen-es', out, include_imports: true, opt: ['target=js+dts', 'import_extension=js'] },
    ],
  };
}

function listFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.push(relative(root, path));
    }
  };
  walk(root);
  return files.sort();
}

const expected = listFiles(scratch);
const actual = listFiles(committed);
const stale = [
  ...expected.filter((file) => !actual.includes(file) || readFileSync(join(scratch, file), 'utf8') !== readFileSync(join(committed, file), 'utf8')),
  ...actual.filter((file) => !expected.includes(file)),
];
if (stale.length > 0) {
  process.stderr.write(`Generated code is stale; run \`npm run generate\` and commit. Differing files:\n  ${stale.join('\n  ')}\n`);
  process.exit(1);
}
process.stdout.write(`generated code matches the protos (${expected.length} files)\n`);
