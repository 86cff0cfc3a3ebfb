import { compileFunction } from '../compile.ts';
import {
  createFunctionRuntime,
  type ExecutionLimits,
  type ExecutionResult,
  type FunctionRuntime,
  type HostCalls,
} from './runtime.ts';

// One worker, so every test also shows that the worker thread stays free and usable.
let runtime: FunctionRuntime;
let executionCount = 0;

const defaultLimits: ExecutionLimits = { timeoutMs: 5000, cpuMs: 5000, memoryMb: 64 };

const request = {
  method: 'POST',
  path: '/functions/acme/echo',
  query: { q: 'one' },
  headers: { 'content-type': 'application/json' },
  body: { message: 'hello' },
};

function execute(
  source: string,
  options: {
    tenant?: string;
    functionName?: string;
    language?: 'javascript' | 'typescript';
    limits?: Partial<ExecutionLimits>;
    host?: HostCalls;
    target?: FunctionRuntime;
  } = {},
): Promise<ExecutionResult> {
  const { code } = compileFunction(source, options.language ?? 'javascript');
  executionCount += 1;
  return (options.target ?? runtime).execute({
    tenant: options.tenant ?? 'acme',
    functionName: options.functionName ?? `fn-${executionCount}`,
    version: 1,
    executionId: `exec-${executionCount}`,
    code,
    request,
    limits: { ...defaultLimits, ...options.limits },
    host: options.host ?? {},
  });
}

const trivial = 'export default () => "pong";';

beforeAll(() => {
  runtime = createFunctionRuntime({ maxWorkers: 1 });
});

afterAll(async () => {
  await runtime.close();
});

describe('function runtime', () => {
  it('echoes the request', async () => {
    const result = await execute(
      'export default async (request, ctx) => ({ request, tenant: ctx.tenant, id: ctx.execution.id });',
    );

    expect(result.status).toBe('succeeded');
    expect(result.response?.status).toBe(200);
    expect(result.response?.headers['content-type']).toBe('application/json');
    expect(result.response?.body).toEqual({
      request,
      tenant: 'acme',
      id: `exec-${executionCount}`,
    });
  });

  it('runs a TypeScript function', async () => {
    const result = await execute(
      'type Body = { message: string };\n' +
        'export default async (request: { body: Body }): Promise<string> =>\n' +
        '  request.body.message.toUpperCase();\n',
      { language: 'typescript' },
    );

    expect(result.status).toBe('succeeded');
    expect(result.response).toEqual({
      status: 200,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: 'HELLO',
    });
  });

  it('normalises response shapes', async () => {
    const cases: Array<[string, unknown]> = [
      [
        'export default () => ({ status: 201, headers: { "X-Id": 7 }, body: { ok: true } });',
        { status: 201, headers: { 'x-id': '7', 'content-type': 'application/json' }, body: { ok: true } },
      ],
      [
        'export default () => new Response("made", { status: 202, headers: { "X-A": "b" } });',
        { status: 202, headers: { 'x-a': 'b', 'content-type': 'text/plain; charset=utf-8' }, body: 'made' },
      ],
      [
        'export default () => Response.json([1, 2], { status: 200 });',
        { status: 200, headers: { 'content-type': 'application/json' }, body: '[1,2]' },
      ],
      ['export default () => [1, 2];', { status: 200, headers: { 'content-type': 'application/json' }, body: [1, 2] }],
      ['export default () => 42;', { status: 200, headers: { 'content-type': 'application/json' }, body: '42' }],
      ['export default () => undefined;', { status: 204, headers: {}, body: null }],
      [
        'export default () => ({ status: "ok", count: 1 });',
        { status: 200, headers: { 'content-type': 'application/json' }, body: { status: 'ok', count: 1 } },
      ],
    ];

    for (const [source, expected] of cases) {
      const result = await execute(source);
      expect({ source, status: result.status }).toEqual({ source, status: 'succeeded' });
      expect({ source, response: result.response }).toEqual({ source, response: expected });
    }
  });

  it('rejects invalid responses', async () => {
    const cases: Array<[string, string]> = [
      ['export default () => ({ status: 99 });', 'Response status must be an integer'],
      ['export default () => ({ status: 200, headers: { "a b": "c" } });', 'Response header name'],
      ['export default () => ({ status: 200, headers: { a: "x\\r\\ny: z" } });', 'without line breaks'],
      ['export default () => () => 1;', 'not JSON'],
      ['export default () => "x".repeat(2 * 1024 * 1024);', 'Response body is larger than'],
    ];

    for (const [source, message] of cases) {
      const result = await execute(source);
      expect({ source, status: result.status }).toEqual({ source, status: 'error' });
      expect(result.error).toContain(message);
    }
  });

  it('reports a thrown error with its stack', async () => {
    const result = await execute(
      'export default async () => {\n  throw new TypeError("boom");\n};\n',
      { functionName: 'thrower' },
    );

    expect(result.status).toBe('error');
    expect(result.error).toContain('TypeError: boom');
    expect(result.error).toContain('thrower@1.js');
  });

  it('reports a default export that is not a function', async () => {
    const result = await execute('export default 42;');

    expect(result.status).toBe('error');
    expect(result.error).toContain('must be a function');
    expect(result.error).not.toContain('worker.ts');
    expect(result.error).not.toMatch(/^\s+at /m);
  });

  it('keeps only function stack frames', async () => {
    const loadError = await execute('throw new Error("at load");\nexport default () => 1;', { functionName: 'loader' });
    const callError = await execute('export default () => { null.x; };', { functionName: 'caller' });

    expect(loadError.error).toMatch(/^Error: at load\n\s+at .*file:\/\/\/loader@1\.js:1:7/);
    expect(loadError.error).not.toContain('worker.ts');
    expect(loadError.error).not.toContain('<isolated-vm');
    expect(callError.error).toMatch(/^TypeError: .*\n\s+at .*file:\/\/\/caller@1\.js:\d+:/);
    expect(callError.error).not.toContain('<isolated-vm');
  });

  it('captures logs with fields', async () => {
    const result = await execute(
      'export default (request, ctx) => {\n' +
        '  ctx.log.info("started", { path: request.path });\n' +
        '  ctx.log.warn("careful");\n' +
        '  console.error("failed", { code: 1 });\n' +
        '  return null;\n' +
        '};\n',
    );

    expect(result.status).toBe('succeeded');
    expect(result.logs.map(({ level, message, fields }) => ({ level, message, fields }))).toEqual([
      { level: 'info', message: 'started', fields: { path: '/functions/acme/echo' } },
      { level: 'warn', message: 'careful', fields: undefined },
      { level: 'error', message: 'failed {"code":1}', fields: undefined },
    ]);
    expect(typeof result.logs[0]!.time).toBe('number');
  });

  it('bounds captured logs', async () => {
    const bounded = createFunctionRuntime({ maxWorkers: 1, maxLogEntries: 3 });
    try {
      const result = await execute(
        'export default (request, ctx) => { for (let i = 0; i < 1000; i++) ctx.log.info("line " + i); };',
        { target: bounded },
      );

      expect(result.status).toBe('succeeded');
      expect(result.logs).toHaveLength(4);
      expect(result.logs.slice(0, 3).map((entry) => entry.message)).toEqual(['line 0', 'line 1', 'line 2']);
      expect(result.logs[3]!.level).toBe('warn');
      expect(result.logs[3]!.message).toContain('log entries dropped');
    } finally {
      await bounded.close();
    }
  });

  it('counts every dropped log entry', async () => {
    const result = await execute('export default () => { for (let i = 0; i < 1000; i++) console.log("line " + i); };');

    expect(result.status).toBe('succeeded');
    expect(result.logs).toHaveLength(201);
    expect(result.logs[200]!.message).toMatch(/^800 log entries dropped: /);
  });

  it('counts entries dropped for size', async () => {
    const result = await execute(
      'export default () => { const line = "x".repeat(1000); for (let i = 0; i < 100000; i++) console.log(line); };',
    );

    expect(result.status).toBe('succeeded');
    const kept = result.logs.length - 1;
    expect(kept).toBeLessThan(200);
    expect(result.logs[kept]!.message).toMatch(new RegExp(`^${100_000 - kept} log entries dropped: `));
  });

  it('returns a secret from the host', async () => {
    const asked: unknown[] = [];
    const host: HostCalls = {
      'secrets.get': async (name) => {
        asked.push(name);
        return name === 'STRIPE_KEY' ? 'sk_test_123' : null;
      },
    };

    const result = await execute(
      'export default async (request, ctx) => ({\n' +
        '  key: await ctx.secrets.get("STRIPE_KEY"),\n' +
        '  missing: await ctx.secrets.get("NOPE"),\n' +
        '});\n',
      { host },
    );

    expect(result.status).toBe('succeeded');
    expect(result.response?.body).toEqual({ key: 'sk_test_123', missing: null });
    expect(asked).toEqual(['STRIPE_KEY', 'NOPE']);
  });

  it('passes host call errors as messages', async () => {
    const host: HostCalls = {
      'secrets.get': async () => {
        throw new Error('secret store unavailable');
      },
    };

    const result = await execute(
      'export default async (request, ctx) => {\n' +
        '  try { await ctx.secrets.get("A"); return "no error"; }\n' +
        '  catch (error) { return { name: error.name, message: error.message, same: error instanceof Error }; }\n' +
        '};\n',
      { host },
    );

    expect(result.response?.body).toEqual({
      name: 'Error',
      message: 'secret store unavailable',
      same: true,
    });
  });

  it('keeps tenant globals apart', async () => {
    const source =
      'export default (request) => {\n' +
      '  const seen = globalThis.shared;\n' +
      '  if (request.body.set) globalThis.shared = request.body.set;\n' +
      '  return { seen: seen ?? "nothing" };\n' +
      '};\n';
    const { code } = compileFunction(source, 'javascript');
    const run = (tenant: string, set?: string) =>
      runtime.execute({
        tenant,
        functionName: 'shared-state',
        version: 1,
        executionId: `state-${tenant}-${set ?? 'read'}`,
        code,
        request: { ...request, body: set ? { set } : {} },
        limits: defaultLimits,
        host: {},
      });

    const first = await run('tenant-a', 'secret of a');
    const otherTenant = await run('tenant-b');
    const sameTenant = await run('tenant-a');

    expect(first.response?.body).toEqual({ seen: 'nothing' });
    expect(otherTenant.response?.body).toEqual({ seen: 'nothing' });
    // A warm isolate keeps module and global state for later executions of the same version.
    expect(sameTenant.response?.body).toEqual({ seen: 'secret of a' });
  });
});

describe('function runtime limits', () => {
  const spinCases: Array<[string, string]> = [
    [
      'a then callback that spins',
      'export default async () => { Promise.resolve().then(() => { for (;;) {} }); return "done"; };',
    ],
    ['an awaited null then a spin', 'export default async () => { await null; for (;;) {} };'],
    [
      'a synchronous spin with a queued microtask spin',
      'export default () => { Promise.resolve().then(() => { for (;;) {} }); for (;;) {} };',
    ],
    [
      'a microtask that queues itself',
      'export default () => { const again = () => queueMicrotask(again); again(); return "done"; };',
    ],
  ];

  it.each(spinCases)('ends %s as a timeout', async (_name, source) => {
    const started = performance.now();
    const spin = execute(source, { tenant: 'spinner', limits: { timeoutMs: 1000, cpuMs: 60_000 } });
    let spinEnded: number | undefined;
    void spin.then(() => {
      spinEnded = performance.now();
    });

    // Another tenant's call starts while the spin runs and must finish before it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const other = await execute(trivial, { tenant: 'bystander', functionName: 'ping' });
    const otherEnded = performance.now();

    const result = await spin;
    const elapsed = performance.now() - started;

    expect(other.status).toBe('succeeded');
    expect(other.response?.body).toBe('pong');
    expect(spinEnded === undefined || otherEnded < spinEnded).toBe(true);
    expect(result.status).toBe('timeout');
    expect(result.error).toContain('timed out after 1000 ms');
    expect(elapsed).toBeLessThan(3000);
    expect((await execute(trivial, { tenant: 'spinner' })).status).toBe('succeeded');
  });

  it('ends a top-level spin during cold start as a timeout', async () => {
    const result = await execute('for (;;) {}\nexport default () => 1;', {
      limits: { timeoutMs: 500, cpuMs: 60_000 },
    });

    expect(result.status).toBe('timeout');
  });

  it('ends a CPU-bound function at its CPU limit', async () => {
    const result = await execute('export default () => { for (;;) {} };', {
      limits: { timeoutMs: 10_000, cpuMs: 300 },
    });

    expect(result.status).toBe('cpu_limit');
    expect(result.error).toContain('300 ms of CPU time');
    expect(result.durationMs).toBeLessThan(10_000);
    expect((await execute(trivial)).status).toBe('succeeded');
  });

  it('does not count waiting on the host as CPU time', async () => {
    const host: HostCalls = {
      'secrets.get': () => new Promise((resolve) => setTimeout(() => resolve('slow'), 600)),
    };

    const result = await execute('export default (request, ctx) => ctx.secrets.get("A");', {
      host,
      limits: { timeoutMs: 5000, cpuMs: 200 },
    });

    expect(result.status).toBe('succeeded');
    expect(result.response?.body).toBe('slow');
  });

  it('ends unbounded allocation at the memory limit', async () => {
    const result = await execute(
      'export default () => { const kept = []; for (;;) kept.push({ value: Math.random(), text: "x" + Math.random() }); };',
      { limits: { memoryMb: 16, timeoutMs: 20_000, cpuMs: 20_000 } },
    );

    expect(result.status).toBe('memory_limit');
    expect(result.error).toContain('16 MB memory limit');
    const after = await execute(trivial);
    expect(after.status).toBe('succeeded');
    expect(after.response?.body).toBe('pong');
  });

  it('drops the isolate after a breach', async () => {
    const source =
      'let calls = 0;\n' +
      'export default (request) => { calls += 1; if (request.body.spin) for (;;) {} return calls; };\n';
    const { code } = compileFunction(source, 'javascript');
    const run = (spin: boolean) =>
      runtime.execute({
        tenant: 'acme',
        functionName: 'counter',
        version: 1,
        executionId: `counter-${spin}`,
        code,
        request: { ...request, body: { spin } },
        limits: { timeoutMs: 500, cpuMs: 60_000, memoryMb: 32 },
        host: {},
      });

    expect((await run(false)).response?.body).toBe('1');
    expect((await run(false)).response?.body).toBe('2');
    expect((await run(true)).status).toBe('timeout');
    expect((await run(false)).response?.body).toBe('1');
  });

  it('rejects invalid limits', async () => {
    await expect(execute(trivial, { limits: { memoryMb: 4 } })).rejects.toThrow('memoryMb');
    await expect(execute(trivial, { limits: { memoryMb: 1024 } })).rejects.toThrow('memoryMb');
    await expect(execute(trivial, { limits: { timeoutMs: 0 } })).rejects.toThrow('timeoutMs');
  });

  it('rejects reserved host call names', async () => {
    await expect(execute(trivial, { host: { 'log.info': async () => null } })).rejects.toThrow('reserved');
    await expect(execute(trivial, { host: { 'a.__proto__': async () => null } })).rejects.toThrow('reserved');
  });
});

describe('preparing a version', () => {
  const prepared = (code: string, functionName: string, limits: ExecutionLimits = defaultLimits) =>
    runtime.prepare({ tenant: 'acme', functionName, version: 1, code, limits });
  const run = (code: string, functionName: string) =>
    runtime.execute({ tenant: 'acme', functionName, version: 1, executionId: `exec-${functionName}`, code, request, limits: defaultLimits, host: {} });

  it('evaluates the module before the first execution', async () => {
    const { code } = compileFunction('const loadedAt = Date.now();\nexport default () => ({ loadedAt });', 'javascript');
    await prepared(code, 'prepared-early');
    const afterPrepare = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const result = await run(code, 'prepared-early');
    expect(result.status).toBe('succeeded');
    expect((result.response?.body as { loadedAt: number }).loadedAt).toBeLessThanOrEqual(afterPrepare);
  });

  it('an execution during preparation reuses its isolate', async () => {
    const { code } = compileFunction('let calls = 0;\nexport default () => ({ calls: ++calls });', 'javascript');
    const preparing = prepared(code, 'prepared-joined');
    const first = await run(code, 'prepared-joined');
    await preparing;
    const second = await run(code, 'prepared-joined');
    expect(first.response?.body).toEqual({ calls: 1 });
    expect(second.response?.body).toEqual({ calls: 2 });
  });

  it('leaves a failing module to its first execution', async () => {
    const { code } = compileFunction('throw new Error("broken at load");\nexport default () => 1;', 'javascript');
    await expect(prepared(code, 'prepared-broken')).resolves.toBeUndefined();
    const result = await run(code, 'prepared-broken');
    expect(result.status).toBe('error');
    expect(result.error).toContain('broken at load');
  });

  it('check accepts a module that loads', async () => {
    const { code } = compileFunction('export default () => 1;', 'javascript');
    await expect(runtime.check({ tenant: 'acme', functionName: 'checked', version: 0, code, limits: defaultLimits })).resolves.toBeUndefined();
  });

  it('check reports a default export of another type', async () => {
    const { code } = compileFunction('export default 5;', 'javascript');
    const failure = await runtime.check({ tenant: 'acme', functionName: 'checked-five', version: 0, code, limits: defaultLimits });

    expect(failure?.status).toBe('error');
    expect(failure?.error).toContain('must be a function');
    expect(failure?.error).not.toContain('worker.ts');
  });

  it('check reports a top level over its limit', async () => {
    const { code } = compileFunction('while (true) {}\nexport default () => 1;', 'javascript');
    const limits = { timeoutMs: 200, cpuMs: 200, memoryMb: 64 };
    const failure = await runtime.check({ tenant: 'acme', functionName: 'checked-spin', version: 0, code, limits });

    expect(['timeout', 'cpu_limit']).toContain(failure?.status);
  });

  it('stops a module whose top level spins', async () => {
    const { code } = compileFunction('while (true) {}\nexport default () => 1;', 'javascript');
    await expect(prepared(code, 'prepared-spinning', { timeoutMs: 200, cpuMs: 200, memoryMb: 64 })).resolves.toBeUndefined();
  });
});

describe('idle isolate cache', () => {
  // Module scope keeps about 8 MiB of doubles alive between executions.
  const holder = 'globalThis.kept = new Array(1_000_000).fill(0.5);\nexport default () => kept.length;';

  it('stays within its heap budget', async () => {
    const small = createFunctionRuntime({ maxWorkers: 1, maxIdleHeapMbPerWorker: 24 });
    try {
      for (const name of ['held-1', 'held-2', 'held-3', 'held-4']) {
        const result = await execute(holder, { functionName: name, target: small });
        expect(result.status).toBe('succeeded');
      }
      const stats = await small.idleIsolates();

      expect(stats.idleIsolates).toBeGreaterThan(0);
      expect(stats.idleIsolates).toBeLessThan(4);
      expect(stats.idleHeapBytes).toBeLessThanOrEqual(24 * 1024 * 1024);
    } finally {
      await small.close();
    }
  });

  it('disposes an isolate with a large heap', async () => {
    const strict = createFunctionRuntime({ maxWorkers: 1, maxReusedIsolateHeapMb: 4 });
    try {
      await execute(trivial, { functionName: 'light', target: strict });
      await execute(holder, { functionName: 'heavy', target: strict });
      const stats = await strict.idleIsolates();

      expect(stats.idleIsolates).toBe(1);
      expect(stats.idleHeapBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    } finally {
      await strict.close();
    }
  });

  it('disposes isolates after the idle timeout', async () => {
    const brief = createFunctionRuntime({ maxWorkers: 1, idleIsolateTimeoutMs: 100 });
    try {
      await execute(trivial, { target: brief });
      expect((await brief.idleIsolates()).idleIsolates).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 400));

      expect(await brief.idleIsolates()).toEqual({ idleIsolates: 0, idleHeapBytes: 0 });
    } finally {
      await brief.close();
    }
  });
});
