import { compileFunction } from '../compile.ts';
import { createFunctionRuntime, type FunctionRuntime, type HostCalls } from './runtime.ts';

// Each probe is an expression evaluated inside a function. `probe` reports `host` when the
// expression reached Node's `process` or `require`, `sandbox global` for the isolate's own
// global, `threw <Name>` when it threw or rejected, and `typeof` of anything else.
const probeHelpers = `
const isHost = (value) =>
  value !== null && (typeof value === 'object' || typeof value === 'function') &&
  (typeof (value.versions && value.versions.node) === 'string' ||
   (typeof value.resolve === 'function' && typeof value.cache === 'object') ||
   typeof value.process === 'object' || typeof value.require === 'function' ||
   typeof value.Buffer === 'function');
const describe = (value) => {
  if (isHost(value)) return 'host';
  if (value === globalThis) return 'sandbox global';
  return typeof value;
};
const probe = async (attempt) => {
  try {
    return describe(await attempt());
  } catch (error) {
    return 'threw ' + (error && error.name);
  }
};
`;

const probes: Record<string, { expression: string; expected: string }> = {
  'require': { expression: 'typeof require === "undefined" ? undefined : require', expected: 'undefined' },
  'process': { expression: 'typeof process === "undefined" ? undefined : process', expected: 'undefined' },
  'module and Buffer': {
    expression: '[typeof module, typeof Buffer, typeof global, typeof __dirname].join()',
    expected: 'string',
  },
  'globalThis constructor chain': {
    expression: 'globalThis.constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'this constructor chain': {
    expression: '(function () { return this.constructor.constructor("return process")(); }).call(globalThis)',
    expected: 'threw ReferenceError',
  },
  'handler this': { expression: 'handlerThis === undefined ? undefined : handlerThis', expected: 'undefined' },
  'request constructor chain': {
    expression: 'request.constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'request headers constructor chain': {
    expression: 'request.headers.constructor.constructor("return require")()',
    expected: 'threw ReferenceError',
  },
  'ctx constructor chain': {
    expression: 'ctx.constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'ctx.log constructor chain': {
    expression: 'ctx.log.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'ctx.log.info constructor chain': {
    expression: 'ctx.log.info.constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'ctx.secrets.get constructor chain': {
    expression: 'ctx.secrets.get.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'ctx.secrets.get promise constructor chain': {
    expression: 'ctx.secrets.get("VALUE").constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'secret value constructor chain': {
    expression: '(await ctx.secrets.get("OBJECT")).constructor.constructor("return process")()',
    expected: 'threw ReferenceError',
  },
  'secret value is a sandbox object': {
    expression: 'Object.getPrototypeOf(await ctx.secrets.get("OBJECT")) === Object.prototype ? undefined : "foreign"',
    expected: 'undefined',
  },
  'host error constructor chain': {
    expression: 'await ctx.secrets.get("FAIL").catch((error) => error.constructor.constructor("return process")())',
    expected: 'threw ReferenceError',
  },
  'host error is a sandbox Error': {
    expression:
      'await ctx.secrets.get("FAIL").catch((error) => ' +
      'Object.getPrototypeOf(error) === Error.prototype && Object.keys(error).length === 0 ? undefined : "foreign")',
    expected: 'undefined',
  },
  'host error stack frames': {
    expression:
      'await (async () => {\n' +
      '  const previous = Error.prepareStackTrace;\n' +
      '  Error.prepareStackTrace = (error, frames) => frames.map((frame) => frame.getThis());\n' +
      '  try {\n' +
      '    const error = await ctx.secrets.get("FAIL").catch((error) => error);\n' +
      '    const frames = Array.isArray(error.stack) ? error.stack : [];\n' +
      '    return frames.find((value) => isHost(value));\n' +
      '  } finally {\n' +
      '    Error.prepareStackTrace = previous;\n' +
      '  }\n' +
      '})()',
    expected: 'undefined',
  },
  'Function returning this': { expression: 'Function("return this")()', expected: 'sandbox global' },
  'Function returning process': { expression: 'Function("return process")()', expected: 'threw ReferenceError' },
  'eval of process': { expression: 'eval("process")', expected: 'threw ReferenceError' },
  'indirect eval of this': { expression: '(0, eval)("this")', expected: 'sandbox global' },
  'eval of constructor chain': {
    expression: 'eval("ctx.log.constructor.constructor(\\"return require\\")()")',
    expected: 'threw ReferenceError',
  },
  'dynamic import': { expression: 'import("node:fs")', expected: 'threw Error' },
  'dynamic import from eval': { expression: 'eval("import(\\"node:child_process\\")")', expected: 'threw Error' },
  'WebAssembly': { expression: 'typeof WebAssembly === "undefined" ? undefined : WebAssembly', expected: 'undefined' },
  'SharedArrayBuffer': {
    expression: 'typeof SharedArrayBuffer === "undefined" ? undefined : SharedArrayBuffer',
    expected: 'undefined',
  },
  'setTimeout': { expression: 'typeof setTimeout === "undefined" ? undefined : setTimeout', expected: 'undefined' },
  'setInterval': { expression: 'typeof setInterval === "undefined" ? undefined : setInterval', expected: 'undefined' },
  'setImmediate': { expression: 'typeof setImmediate === "undefined" ? undefined : setImmediate', expected: 'undefined' },
  'host globals by name': {
    expression:
      'Object.getOwnPropertyNames(globalThis).filter((name) => ' +
      '["process", "require", "Buffer", "module", "global", "ivm", "$0", "$1", "$2"].includes(name)).join() || undefined',
    expected: 'undefined',
  },
  'globals reaching the host': {
    expression: 'Object.getOwnPropertyNames(globalThis).map((name) => globalThis[name]).find((value) => isHost(value))',
    expected: 'undefined',
  },
};

function escapeSource(): string {
  const entries = Object.entries(probes)
    .map(([name, { expression }]) => `    ${JSON.stringify(name)}: await probe(async () => ${expression}),`)
    .join('\n');
  return `${probeHelpers}
export default async function (request, ctx) {
  const handlerThis = this;
  return {
${entries}
  };
}
`;
}

const host: HostCalls = {
  'secrets.get': async (name) => {
    if (name === 'FAIL') throw new Error('secret store unavailable');
    if (name === 'OBJECT') return { nested: { list: [1, 2] } };
    return 'plain value';
  },
};

let runtime: FunctionRuntime;
let outcomes: Record<string, string>;

beforeAll(async () => {
  runtime = createFunctionRuntime({ maxWorkers: 1 });
  const { code } = compileFunction(escapeSource(), 'javascript');
  const result = await runtime.execute({
    tenant: 'intruder',
    functionName: 'escape',
    version: 1,
    executionId: 'escape-1',
    code,
    request: { method: 'GET', path: '/', query: {}, headers: { a: 'b' }, body: { x: 1 } },
    limits: { timeoutMs: 5000, cpuMs: 5000, memoryMb: 64 },
    host,
  });
  if (result.status !== 'succeeded') {
    throw new Error(`The escape probe function failed: ${result.status} ${result.error}`);
  }
  outcomes = result.response?.body as Record<string, string>;
});

afterAll(async () => {
  await runtime.close();
});

describe('sandbox escape attempts', () => {
  it.each(Object.entries(probes))('%s stays in the sandbox', (name, { expected }) => {
    expect(outcomes[name]).toBe(expected);
  });

  it('exposes no timers that outlive an execution', async () => {
    const { code } = compileFunction(
      'export default () => [typeof setTimeout, typeof setInterval, typeof setImmediate, typeof queueMicrotask];',
      'javascript',
    );
    const result = await runtime.execute({
      tenant: 'intruder',
      functionName: 'timers',
      version: 1,
      executionId: 'timers-1',
      code,
      request: { method: 'GET', path: '/', query: {}, headers: {}, body: null },
      limits: { timeoutMs: 5000, cpuMs: 5000, memoryMb: 64 },
      host,
    });

    // queueMicrotask runs inside the execution: its callbacks finish before the result returns.
    expect(result.response?.body).toEqual(['undefined', 'undefined', 'undefined', 'function']);
  });

  it('ignores host calls from an ended execution', async () => {
    const calls: unknown[] = [];
    const recording: HostCalls = {
      'secrets.get': async (name) => {
        calls.push(name);
        return 'value';
      },
    };
    const { code } = compileFunction(
      'let pending;\n' +
        'export default async (request, ctx) => {\n' +
        '  if (request.body.first) { pending = ctx.secrets; return "stored"; }\n' +
        '  const late = await Promise.race([\n' +
        '    pending.get("FROM_OLD_CTX").then(() => "answered", () => "rejected"),\n' +
        '    ctx.secrets.get("CURRENT").then(() => "current"),\n' +
        '  ]);\n' +
        '  return late;\n' +
        '};\n',
      'javascript',
    );
    const run = (first: boolean) =>
      runtime.execute({
        tenant: 'intruder',
        functionName: 'stale',
        version: 1,
        executionId: `stale-${first}`,
        code,
        request: { method: 'GET', path: '/', query: {}, headers: {}, body: { first } },
        limits: { timeoutMs: 5000, cpuMs: 5000, memoryMb: 64 },
        host: recording,
      });

    expect((await run(true)).response?.body).toBe('stored');
    const second = await run(false);

    expect(second.response?.body).toBe('current');
    expect(calls).toEqual(['CURRENT']);
  });
});
