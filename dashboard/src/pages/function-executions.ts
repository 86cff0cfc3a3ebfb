import type { Execution } from '../../../sdk/ts/src/index.ts';
import { el, field, formatTime, run, show, table } from '../dom.ts';
import type { PageContext } from '../main.ts';

/** Statuses an execution can end with, as the server records them. */
const STATUSES = ['succeeded', 'error', 'timeout', 'cpu_limit', 'memory_limit'];

/** Builds the executions tab: newest first, filtered by status, with logs on request. */
export function executionsTab({ client, tenant }: PageContext, name: string): HTMLElement {
  const output = el('div', { 'aria-live': 'polite' });
  const more = el('div');
  const status = el('select', { name: 'status' }, el('option', { value: '' }, 'Any'), ...STATUSES.map((value) => el('option', { value }, value)));
  const filter = el('form', { class: 'filters' }, field('Status', status), el('button', { type: 'submit' }, 'Show'));
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    void run(output, null, () => load(''));
  });

  let executions: Execution[] = [];
  async function load(pageToken: string) {
    const response = await client.functions.listExecutions({ tenant, name, status: status.value, pageSize: 25, pageToken });
    executions = pageToken ? [...executions, ...response.executions] : response.executions;
    show(
      output,
      table(
        'Executions',
        ['Started', 'Status', 'Trigger', 'Version', 'Duration', 'Error', 'Logs'],
        executions.map((execution) => [
          formatTime(execution.startTime),
          el('span', { class: `status ${execution.status}` }, execution.status),
          execution.triggerSource ? `${execution.triggerType}: ${execution.triggerSource}` : execution.triggerType,
          String(execution.version),
          `${execution.durationMs.toFixed(1)} ms`,
          execution.error,
          logsButton(execution),
        ]),
      ),
    );
    show(more, response.nextPageToken ? el('button', { type: 'button', onclick: () => void run(output, null, () => load(response.nextPageToken)) }, 'Load more') : null);
  }

  function logsButton(execution: Execution): HTMLElement {
    const box = el('div');
    const button = el('button', {
      type: 'button',
      onclick: async () => {
        const response = await run(box, button, () => client.functions.getExecution({ tenant, name, executionId: execution.id }));
        const logs = response?.execution?.logs ?? [];
        show(box, logs.length === 0 ? 'No log lines.' : el('ol', { class: 'logs' }, ...logs.map((log) => el('li', {}, `${log.level}: ${log.message}`))));
      },
    }, 'Show logs');
    box.append(button);
    return box;
  }

  void run(output, null, () => load(''));
  return el('div', {}, filter, output, more);
}
