import { el } from '../dom.ts';
import type { Page, PageContext } from '../main.ts';
import { codeTab } from './function-code.ts';
import { executionsTab } from './function-executions.ts';
import { testTab } from './function-test.ts';
import { triggersTab } from './function-triggers.ts';

const TABS: [string, string, (context: PageContext, name: string) => HTMLElement][] = [
  ['code', 'Code and versions', codeTab],
  ['test', 'Test console', testTab],
  ['triggers', 'Triggers', triggersTab],
  ['executions', 'Executions', executionsTab],
];

/** Builds one function's page: a tab per concern, chosen by the route's last segment. */
export const functionPage: Page = (context) => {
  const [name, tab = 'code'] = context.params;
  const current = TABS.find(([id]) => id === tab) ?? TABS[0];
  const tabs = el(
    'nav',
    { class: 'tabs', 'aria-label': `Function ${name}` },
    el('ul', {}, ...TABS.map(([id, text]) => el('li', {}, el('a', { href: `#/t/${context.tenant}/functions/${name}/${id}`, 'aria-current': id === current[0] ? 'page' : undefined }, text)))),
  );
  return {
    title: `Function ${name}: ${current[1].toLowerCase()}`,
    content: el('div', {}, el('p', {}, el('a', { href: `#/t/${context.tenant}/functions` }, '← All functions')), tabs, current[2](context, name)),
  };
};
