import type { Tenant } from '../../../sdk/ts/src/index.ts';
import { el, field, formText, formatTime, notice, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

/** Builds the platform admin's tenant list: provision, open and delete tenants. */
export const tenantsPage: Page = ({ client }) => {
  const listOutput = el('div', { 'aria-live': 'polite' });
  const provisionOutput = el('div', { 'aria-live': 'polite' });

  async function refresh() {
    const tenants: Tenant[] = [];
    let pageToken = '';
    do {
      const response = await client.tenants.listTenants({ pageSize: 100, pageToken });
      tenants.push(...response.tenants);
      pageToken = response.nextPageToken;
    } while (pageToken);
    show(
      listOutput,
      table(
        'Tenants',
        ['Id', 'Display name', 'Created', ''],
        tenants.map((tenant) => [
          el('a', { href: `#/t/${tenant.id}/users` }, tenant.id),
          tenant.displayName,
          formatTime(tenant.createTime),
          deleteControl(tenant.id),
        ]),
      ),
    );
  }

  // Deleting drops the tenant's database, so the first click only asks for confirmation.
  function deleteControl(id: string): HTMLElement {
    const box = el('div', { class: 'actions' });
    const ask = el('button', { type: 'button', class: 'danger', onclick: confirm }, `Delete ${id}`);
    show(box, ask);
    function confirm() {
      const output = el('div');
      const yes = el('button', {
        type: 'button',
        class: 'danger',
        onclick: async () => {
          const done = await run(output, yes, () => client.tenants.deleteTenant({ id }));
          if (done) await run(listOutput, null, refresh);
        },
      }, `Confirm: delete ${id} and its data`);
      const no = el('button', { type: 'button', onclick: () => show(box, ask) }, 'Cancel');
      show(box, yes, no, output);
      yes.focus();
    }
    return box;
  }

  const submit = el('button', { type: 'submit' }, 'Provision tenant');
  const form = el(
    'form',
    { class: 'card' },
    el('h2', {}, 'Provision a tenant'),
    field('Tenant id', el('input', { name: 'id', required: true, pattern: '[a-z0-9][a-z0-9\\-]{1,38}[a-z0-9]' }), '3 to 40 lowercase letters, digits and hyphens.'),
    field('Display name', el('input', { name: 'displayName' })),
    submit,
    provisionOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const response = await run(provisionOutput, submit, () =>
      client.tenants.provisionTenant({ id: formText(form, 'id'), displayName: formText(form, 'displayName') }),
    );
    if (!response) return;
    form.reset();
    show(
      provisionOutput,
      el(
        'div',
        { class: 'secret', role: 'status' },
        el('p', {}, `Provisioned ${response.tenant?.id}. Its admin password is shown only now; copy it.`),
        el('dl', {}, el('dt', {}, 'Admin email'), el('dd', { class: 'admin-email' }, response.adminEmail), el('dt', {}, 'Admin password'), el('dd', {}, el('code', { class: 'admin-password' }, response.adminPassword))),
      ),
    );
    await run(listOutput, null, refresh);
  });

  show(listOutput, notice('Loading tenants…'));
  void run(listOutput, null, refresh);
  return { title: 'Tenants', content: el('div', {}, form, el('section', { class: 'card' }, el('h2', {}, 'All tenants'), listOutput)) };
};
