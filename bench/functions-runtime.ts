// Measures the function runtime without HTTP: latency of warm and cold executions through
// piscina and isolated-vm, and resident memory per idle loaded function.
// Run: node_modules/.bin/node --no-node-snapshot bench/functions-runtime.ts
import { compileFunction } from '../services/functions/compile.ts';
import { createFunctionRuntime, type ExecutionTask } from '../services/functions/runtime/runtime.ts';

const warmRuns = 1000;
const coldRuns = 100;
const loadedFunctions = 200;
const maxSeconds = 120;

const source = `
export default async (request, ctx) => {
  ctx.log.info('echo', { path: request.path });
  return { ok: true, echo: request.body, secret: await ctx.secrets.get('KEY') };
};
`;
const { code } = compileFunction(source, 'javascript');
const deadline = performance.now() + maxSeconds * 1000;

function task(tenant: string, version: number, executionId: string): ExecutionTask {
  return {
    tenant,
    functionName: 'echo',
    version,
    executionId,
    code,
    request: { method: 'POST', path: '/functions/bench/echo', query: {}, headers: {}, body: { n: 1 } },
    limits: { timeoutMs: 5000, cpuMs: 5000, memoryMb: 64 },
    host: { 'secrets.get': async () => 'value' },
  };
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(name: string, samples: number[]): void {
  const p50 = percentile(samples, 50).toFixed(2);
  const p95 = percentile(samples, 95).toFixed(2);
  console.log(`${name}: n=${samples.length} p50=${p50} ms p95=${p95} ms`);
}

async function timed(runtime: ReturnType<typeof createFunctionRuntime>, input: ExecutionTask) {
  const started = performance.now();
  const result = await runtime.execute(input);
  if (result.status !== 'succeeded') throw new Error(`Execution failed: ${result.error}`);
  return performance.now() - started;
}

const runtime = createFunctionRuntime({ maxWorkers: 1, maxIdleIsolatesPerWorker: loadedFunctions + 10 });
try {
  await timed(runtime, task('bench-warm', 1, 'warmup'));
  const warm: number[] = [];
  for (let i = 0; i < warmRuns && performance.now() < deadline; i++) {
    warm.push(await timed(runtime, task('bench-warm', 1, `warm-${i}`)));
  }
  report('warm execute', warm);

  const cold: number[] = [];
  for (let version = 1; version <= coldRuns && performance.now() < deadline; version++) {
    cold.push(await timed(runtime, task('bench-cold', version, `cold-${version}`)));
  }
  report('cold execute (new isolate, context and module)', cold);

  global.gc?.();
  const before = process.memoryUsage().rss;
  let loaded = 0;
  for (; loaded < loadedFunctions && performance.now() < deadline; loaded++) {
    await timed(runtime, task(`bench-tenant-${loaded}`, 1, `load-${loaded}`));
  }
  global.gc?.();
  const after = process.memoryUsage().rss;
  const perFunction = (after - before) / loaded / 1024 / 1024;
  console.log(`RSS per idle loaded function: ${perFunction.toFixed(2)} MiB (${loaded} tenants)`);
} finally {
  await runtime.close();
}
