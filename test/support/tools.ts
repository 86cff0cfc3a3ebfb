import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Path of grpcurl: on PATH, or where `go install` puts it. Throws with a fix when missing. */
export function grpcurlPath(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v grpcurl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    const installed = join(gopath, 'bin', 'grpcurl');
    if (existsSync(installed)) return installed;
  } catch {
    // Go is missing; fall through to the error.
  }
  throw new Error('grpcurl not found; run `sh scripts/ensure-deps.sh test` (it uses go install)');
}

/** Runs grpcurl and returns its exit status, stdout and stderr. */
export function grpcurl(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(grpcurlPath(), args, { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
