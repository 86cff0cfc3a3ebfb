import type { DeadLetter } from '../../../sdk/ts/src/index.ts';
import { el, field, formatTime, notice, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

/** Builds the dead-letter page: deliveries that used up their attempts, with replay of a selection. */
export const deadLettersPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const replayOutput = el('div', { 'aria-live': 'polite' });
  const more = el('div');
  const functionName = el('input', { name: 'functionName', placeholder: 'All functions' });
  const filter = el('form', { class: 'filters' }, field('Function', functionName), el('button', { type: 'submit' }, 'Show'));
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    void run(output, null, () => load(''));
  });

  let letters: DeadLetter[] = [];
  const selected = new Set<string>();
  async function load(pageToken: string) {
    const response = await client.triggers.listDeadLetters({ tenant, functionName: functionName.value.trim(), pageSize: 50, pageToken });
    letters = pageToken ? [...letters, ...response.deadLetters] : response.deadLetters;
    if (!pageToken) selected.clear();
    show(
      output,
      table(
        'Dead letters',
        ['Select', 'Function', 'Event', 'Attempts', 'Last error', 'Failed', 'Replays'],
        letters.map((letter) => [
          el('input', {
            type: 'checkbox',
            'aria-label': `Select dead letter ${letter.id}`,
            checked: selected.has(letter.id),
            onchange: (event) => {
              if ((event.target as HTMLInputElement).checked) selected.add(letter.id);
              else selected.delete(letter.id);
            },
          }),
          letter.functionName,
          letter.eventType,
          String(letter.attempts),
          letter.lastError,
          formatTime(letter.failTime),
          letter.replayCount ? `${letter.replayCount} (last ${formatTime(letter.replayTime)})` : '0',
        ]),
      ),
    );
    show(more, response.nextPageToken ? el('button', { type: 'button', onclick: () => void run(output, null, () => load(response.nextPageToken)) }, 'Load more') : null);
  }

  const replay = el('button', {
    type: 'button',
    onclick: async () => {
      if (selected.size === 0) {
        show(replayOutput, notice('Select at least one dead letter to replay.'));
        return;
      }
      const response = await run(replayOutput, replay, () => client.triggers.replayDeadLetters({ tenant, ids: [...selected] }));
      if (!response) return;
      show(replayOutput, notice(`Queued ${response.replayedIds.length} of ${selected.size} for delivery again.`));
      await run(output, null, () => load(''));
    },
  }, 'Replay selected');

  void run(output, null, () => load(''));
  return { title: 'Dead letters', content: el('div', {}, filter, output, more, el('div', { class: 'row' }, replay), replayOutput) };
};
