import type { Function as TansuFunction } from '../../../sdk/ts/src/index.ts';
import { el, field, formText, formatTime, run, show, table } from '../dom.ts';
import { navigate, type Page } from '../main.ts';

/** Builds the function list, with a form that opens the editor for a new function name. */
export const functionsPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });

  async function load() {
    const functions: TansuFunction[] = [];
    let pageToken = '';
    do {
      const response = await client.functions.listFunctions({ tenant, pageSize: 100, pageToken });
      functions.push(...response.functions);
      pageToken = response.nextPageToken;
    } while (pageToken);
    show(
      output,
      table(
        'Functions',
        ['Name', 'Public', 'Active version', 'Updated'],
        functions.map((fn) => [
          el('a', { href: `#/t/${tenant}/functions/${fn.name}/code` }, fn.name),
          fn.public ? 'yes' : 'no',
          fn.activeVersion ? String(fn.activeVersion) : 'none',
          formatTime(fn.updateTime),
        ]),
      ),
    );
  }

  // A function exists from its first deploy, so "new" only opens the editor under that name.
  const form = el(
    'form',
    { class: 'card inline-form' },
    field('New function name', el('input', { name: 'name', required: true, pattern: '[a-z][a-z0-9\\-]{0,62}' }), 'Lowercase letters, digits and hyphens.'),
    el('button', { type: 'submit' }, 'Open editor'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    navigate(`/t/${tenant}/functions/${formText(form, 'name')}/code`);
  });

  void run(output, null, load);
  return { title: 'Functions', content: el('div', {}, form, output) };
};
