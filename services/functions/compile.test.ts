import { Code, ConnectError } from '@connectrpc/connect';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';

import { compileFunction } from './compile.ts';

function errorInfo(error: unknown) {
  expect(error).toBeInstanceOf(ConnectError);
  const [info] = (error as ConnectError).findDetails(ErrorInfoSchema);
  return { code: (error as ConnectError).code, message: (error as ConnectError).rawMessage, info };
}

function compileError(source: string, language: 'javascript' | 'typescript') {
  try {
    compileFunction(source, language);
  } catch (error) {
    return errorInfo(error);
  }
  throw new Error('compileFunction accepted invalid source');
}

describe('compileFunction', () => {
  it('strips TypeScript types', () => {
    const { code } = compileFunction(
      'interface Input { name: string }\n' +
        'export default async (request: { body: Input }): Promise<string> => request.body.name;\n',
      'typescript',
    );

    expect(code).not.toContain('interface');
    expect(code).not.toContain(': Promise<string>');
    expect(code).toContain('export');
    expect(code).toContain('default');
  });

  it('keeps JavaScript as an ES module', () => {
    const { code } = compileFunction('export default function handler() { return 1; }', 'javascript');

    expect(code).toContain('function handler()');
    expect(code).toMatch(/export\s*(default|\{)/);
  });

  it('names line and column of a syntax error', () => {
    const error = compileError('const ok = 1;\nconst broken = ;\nexport default () => ok;\n', 'javascript');

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.info?.reason).toBe('FUNCTION_SYNTAX_ERROR');
    expect(error.info?.metadata.line).toBe('2');
    expect(error.info?.metadata.column).toBe('16');
    expect(error.message).toContain('line 2, column 16');
  });

  it('reports TypeScript syntax errors', () => {
    const error = compileError('export default (x: number => x;\n', 'typescript');

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.info?.reason).toBe('FUNCTION_SYNTAX_ERROR');
    expect(error.info?.metadata.line).toBe('1');
  });

  it('rejects TypeScript syntax declared as JavaScript', () => {
    const error = compileError('export default (x: number) => x;\n', 'javascript');

    expect(error.info?.reason).toBe('FUNCTION_SYNTAX_ERROR');
  });

  it('rejects a module without a default export', () => {
    const error = compileError('export const handler = () => 1;\n', 'javascript');

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.info?.reason).toBe('FUNCTION_INVALID_MODULE');
    expect(error.message).toContain('default export');
  });

  it('rejects static imports', () => {
    const error = compileError('import fs from "node:fs";\nexport default () => fs;\n', 'javascript');

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.info?.reason).toBe('FUNCTION_INVALID_MODULE');
    expect(error.info?.metadata.import).toBe('node:fs');
  });
});
