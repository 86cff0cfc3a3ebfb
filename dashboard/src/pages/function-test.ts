import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';

import type { ExecutionLog } from '../../../sdk/ts/src/index.ts';
import { el, field, formatTime, run, show } from '../dom.ts';
import type { PageContext } from '../main.ts';

/** Parses `key=value` lines (query) or `key: value` lines (headers) into a map. */
function parsePairs(text: string, separator: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf(separator);
    if (!line.trim() || at < 1) continue;
    pairs[line.slice(0, at).trim()] = line.slice(at + separator.length).trim();
  }
  return pairs;
}

/** Builds the invocation result: status, HTTP status, duration, body, error and logs. */
function resultView(
  response: { status: string; httpStatus: number; durationMs: number; error: string; executionId: string; body?: unknown },
  body: JsonValue | undefined,
  logs: ExecutionLog[],
): HTMLElement {
  return el(
    'section',
    { class: 'result', 'aria-label': 'Invocation result' },
    el(
      'dl',
      {},
      el('dt', {}, 'Status'),
      el('dd', { class: `status ${response.status}` }, response.status),
      el('dt', {}, 'HTTP status'),
      el('dd', { class: 'http-status' }, String(response.httpStatus)),
      el('dt', {}, 'Duration'),
      el('dd', {}, `${response.durationMs.toFixed(1)} ms`),
      el('dt', {}, 'Execution'),
      el('dd', {}, el('code', {}, response.executionId)),
    ),
    response.error ? el('p', { class: 'error', role: 'alert' }, response.error) : null,
    el('h3', {}, 'Body'),
    el('pre', { class: 'body' }, body === undefined ? '(empty)' : JSON.stringify(body, null, 2)),
    el('h3', {}, 'Logs'),
    logs.length === 0
      ? el('p', { class: 'empty' }, 'No log lines.')
      : el('ol', { class: 'logs' }, ...logs.map((log) => el('li', {}, el('span', { class: `level ${log.level}` }, log.level), ' ', formatTime(log.time), ' ', log.message))),
  );
}

/** Builds the test console: invoke the active version with a request and show what it did. */
export function testTab({ client, tenant }: PageContext, name: string): HTMLElement {
  const output = el('div', { 'aria-live': 'polite' });
  const method = el('select', { name: 'method' }, ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((verb) => el('option', { value: verb }, verb)));
  const path = el('input', { name: 'path', value: '/' });
  const query = el('textarea', { name: 'query', rows: 3, placeholder: 'name=Ada' });
  const headers = el('textarea', { name: 'headers', rows: 3, placeholder: 'x-request-id: 42' });
  const body = el('textarea', { name: 'body', rows: 5, class: 'code', placeholder: '{"text": "hello"}' });
  const invoke = el('button', { type: 'submit' }, 'Invoke');

  const form = el(
    'form',
    { class: 'card' },
    el('div', { class: 'row' }, field('Method', method), field('Path', path)),
    el('div', { class: 'row' }, field('Query (name=value per line)', query), field('Headers (name: value per line)', headers)),
    field('Body (JSON)', body),
    invoke,
    output,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await run(output, invoke, async () => {
      let requestBody;
      if (body.value.trim()) {
        try {
          requestBody = fromJson(ValueSchema, JSON.parse(body.value) as JsonValue);
        } catch (error) {
          throw new Error(`The body is not valid JSON: ${(error as Error).message}`);
        }
      }
      const response = await client.functions.invokeFunction({
        tenant,
        name,
        method: method.value,
        path: path.value,
        query: parsePairs(query.value, '='),
        headers: parsePairs(headers.value, ':'),
        body: requestBody,
      });
      const execution = response.executionId
        ? await client.functions.getExecution({ tenant, name, executionId: response.executionId })
        : undefined;
      const json = response.body ? toJson(ValueSchema, response.body) : undefined;
      show(output, resultView(response, json, execution?.execution?.logs ?? []));
    });
  });
  return form;
}
