import { buildSync, type BuildFailure, type Message } from 'esbuild';

import { domainError } from '../core/errors.ts';

/** Source language of a function as deployed. */
export type FunctionLanguage = 'javascript' | 'typescript';

/** A function module ready to store as a version and to run in the sandbox. */
export interface CompiledFunction {
  /** ES module source with TypeScript types removed and a default export. */
  code: string;
}

/** Largest source accepted at deploy, in UTF-8 bytes. */
export const MAX_FUNCTION_SOURCE_BYTES = 1024 * 1024;

/**
 * Compiles function source at deploy: strips TypeScript types with esbuild, then checks that
 * the result is one ES module with a default export and no static `import`, because the
 * sandbox resolves no modules.
 *
 * Throws `FUNCTION_SYNTAX_ERROR` (INVALID_ARGUMENT) naming the line and 1-based column of a
 * syntax error, with `line` and `column` in the error metadata, and `FUNCTION_INVALID_MODULE`
 * (INVALID_ARGUMENT) when the default export or the module shape is wrong. The check does not
 * run the code, so it cannot tell whether the default export is a function: deploys load the
 * module in the runtime for that (`checkModule` in functions-service.ts).
 */
export function compileFunction(source: string, language: FunctionLanguage): CompiledFunction {
  if (Buffer.byteLength(source) > MAX_FUNCTION_SOURCE_BYTES) {
    throw domainError(
      'FUNCTION_INVALID_MODULE',
      `Function source is larger than ${MAX_FUNCTION_SOURCE_BYTES} bytes; make it smaller.`,
    );
  }

  const sourcefile = language === 'typescript' ? 'function.ts' : 'function.js';
  let result;
  try {
    result = buildSync({
      stdin: { contents: source, loader: language === 'typescript' ? 'ts' : 'js', sourcefile },
      format: 'esm',
      bundle: false,
      write: false,
      metafile: true,
      logLevel: 'silent',
      // The isolates run the V8 that ships with Node 24, so modern syntax stays as written.
      target: 'es2023',
    });
  } catch (error) {
    throw syntaxError(error);
  }

  const output = Object.values(result.metafile.outputs)[0];
  const staticImport = output?.imports.find((entry) => entry.kind === 'import-statement');
  if (staticImport) {
    throw domainError(
      'FUNCTION_INVALID_MODULE',
      `Function imports "${staticImport.path}", but functions cannot import modules; ` +
        'use the ctx argument for platform services.',
      { metadata: { import: staticImport.path } },
    );
  }
  if (!output?.exports.includes('default')) {
    throw domainError(
      'FUNCTION_INVALID_MODULE',
      'Function has no default export; write `export default async (request, ctx) => response`.',
    );
  }

  return { code: result.outputFiles[0]!.text };
}

function syntaxError(error: unknown): Error {
  const message: Message | undefined = (error as Partial<BuildFailure>).errors?.[0];
  if (!message) {
    return domainError('FUNCTION_SYNTAX_ERROR', 'Function source could not be compiled.', {
      cause: error,
    });
  }

  const location = message.location;
  if (!location) {
    return domainError('FUNCTION_SYNTAX_ERROR', `Syntax error: ${message.text}.`, { cause: error });
  }
  // esbuild counts lines from 1 and columns from 0, but editors count both from 1.
  const line = location.line;
  const column = location.column + 1;
  return domainError(
    'FUNCTION_SYNTAX_ERROR',
    `Syntax error at line ${line}, column ${column}: ${message.text}.`,
    { metadata: { line: String(line), column: String(column) }, cause: error },
  );
}
