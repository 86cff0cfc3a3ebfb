/**
 * One segment of a `google.api.http` path template: a literal, `*` (exactly one segment) or
 * `**` (the rest of the path, zero or more segments).
 */
export type TemplateSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'single' }
  | { kind: 'rest' };

/** A `{field.path=...}` capture: the field it fills and the segments it spans. */
export interface TemplateVariable {
  /** Field names from the request message down, as written in the template. */
  fieldPath: string[];
  /** Index of the first segment the variable covers. */
  start: number;
  /** Index after the last segment the variable covers. */
  end: number;
}

/** A parsed path template (see google/api/http.proto for the grammar). */
export interface PathTemplate {
  /** The template as written in the http rule. */
  source: string;
  segments: TemplateSegment[];
  variables: TemplateVariable[];
  /** The custom verb after the last `:` (as in `/v1/{name}:cancel`), or undefined. */
  verb: string | undefined;
}

/**
 * Parses a path template such as `/identity/{tenant}/.well-known/jwks.json` or
 * `/v1/{name=projects/*\/files/**}:download`. Throws an Error naming the template when it does
 * not follow the grammar or puts `**` anywhere but last.
 */
export function parsePathTemplate(source: string): PathTemplate {
  const fail = (problem: string): never => {
    throw new Error(`invalid http rule path template "${source}": ${problem}`);
  };
  if (!source.startsWith('/')) fail('it must start with "/"');

  let path = source.slice(1);
  let verb: string | undefined;
  const lastSlash = path.lastIndexOf('/');
  const verbColon = path.indexOf(':', Math.max(lastSlash, path.lastIndexOf('}')));
  if (verbColon >= 0) {
    verb = path.slice(verbColon + 1);
    path = path.slice(0, verbColon);
    if (verb === '') fail('the custom verb after ":" is empty');
  }

  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  let position = 0;

  const readSegments = (stopAt: string): void => {
    for (;;) {
      readSegment();
      if (position >= path.length || path[position] === stopAt) return;
      if (path[position] !== '/') fail(`unexpected "${path[position]}" at ${position + 1}`);
      position += 1;
    }
  };
  const readSegment = (): void => {
    if (path[position] === '{') {
      readVariable();
      return;
    }
    const end = findSegmentEnd(path, position);
    const text = path.slice(position, end);
    position = end;
    if (text === '**') segments.push({ kind: 'rest' });
    else if (text === '*') segments.push({ kind: 'single' });
    else if (text === '') fail('it contains an empty segment');
    else segments.push({ kind: 'literal', value: text });
  };
  const readVariable = (): void => {
    if (variables.some((variable) => variable.end === -1)) fail('variables cannot nest');
    const close = path.indexOf('}', position);
    if (close < 0) fail('a "{" has no matching "}"');
    const equals = path.indexOf('=', position);
    const nameEnd = equals >= 0 && equals < close ? equals : close;
    const fieldPath = path.slice(position + 1, nameEnd).split('.');
    if (fieldPath.some((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))) {
      fail(`"${path.slice(position + 1, nameEnd)}" is not a field path`);
    }
    const variable: TemplateVariable = { fieldPath, start: segments.length, end: -1 };
    variables.push(variable);
    if (nameEnd === close) {
      segments.push({ kind: 'single' });
      position = close + 1;
    } else {
      position = equals + 1;
      readSegments('}');
      if (path[position] !== '}') fail('a "{" has no matching "}"');
      position += 1;
    }
    variable.end = segments.length;
  };

  readSegments('');
  const restIndex = segments.findIndex((segment) => segment.kind === 'rest');
  if (restIndex >= 0 && restIndex !== segments.length - 1) fail('"**" must be the last segment');
  return { source, segments, variables, verb };
}

function findSegmentEnd(path: string, start: number): number {
  let end = start;
  while (end < path.length && path[end] !== '/' && path[end] !== '}') end += 1;
  return end;
}

/**
 * Matches a request path (without query string) against a template. Returns the value of
 * each variable, keyed by its dotted field path, or undefined when the path does not match.
 * Values are percent-decoded, except that `%2F` stays encoded inside multi-segment values
 * so it stays distinct from a separator.
 */
export function matchPathTemplate(
  template: PathTemplate,
  requestPath: string,
): Map<string, string> | undefined {
  if (!requestPath.startsWith('/')) return undefined;
  let path = requestPath.slice(1);
  if (template.verb !== undefined) {
    const suffix = `:${template.verb}`;
    if (!path.endsWith(suffix)) return undefined;
    path = path.slice(0, -suffix.length);
  }

  const parts = path.split('/');
  const { segments } = template;
  const endsWithRest = segments.at(-1)?.kind === 'rest';
  const fixedCount = endsWithRest ? segments.length - 1 : segments.length;
  if (endsWithRest ? parts.length < fixedCount : parts.length !== fixedCount) return undefined;

  const decoded: string[] = [];
  for (const part of parts) {
    const text = safeDecode(part.replace(/%2F/gi, '%252F'));
    if (text === undefined) return undefined;
    decoded.push(text);
  }
  for (let index = 0; index < fixedCount; index += 1) {
    const segment = segments[index];
    if (segment.kind === 'literal' && segment.value !== decoded[index]) return undefined;
    if (segment.kind === 'single' && decoded[index] === '') return undefined;
  }

  const values = new Map<string, string>();
  for (const variable of template.variables) {
    const coversRest = endsWithRest && variable.end === segments.length;
    const end = coversRest ? parts.length : variable.end;
    const value = decoded.slice(variable.start, end).join('/');
    const single = end - variable.start === 1;
    values.set(variable.fieldPath.join('.'), single ? safeDecode(parts[variable.start]) ?? '' : value);
  }
  return values;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * Converts a template to a Fastify (find-my-way) route path that matches at least the same
 * requests: variables' segments become parameters named by position (so routes that share a
 * prefix agree on names), and `**` becomes `*`. The transcoder checks the exact template with
 * matchPathTemplate afterwards, so rules whose templates map to one route path can share it.
 */
export function toFastifyPath(template: PathTemplate): string {
  const parts = template.segments.map((segment, index) => {
    switch (segment.kind) {
      case 'literal':
        return segment.value.replaceAll(':', '::');
      case 'single':
        return `:s${index}`;
      case 'rest':
        return '*';
    }
  });
  const last = template.segments.at(-1);
  if (template.verb !== undefined && last?.kind === 'literal') {
    parts[parts.length - 1] += `::${template.verb.replaceAll(':', '::')}`;
  }
  return `/${parts.join('/')}`;
}
