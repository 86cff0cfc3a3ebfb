import { el, field, formText, formatTime, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

/** Splits a textarea into its non-empty lines or space-separated words. */
function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** Builds the OAuth clients page: register public or confidential clients, list and delete them. */
export const clientsPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const createOutput = el('div', { 'aria-live': 'polite' });

  async function load() {
    const { clients } = await client.clients.listClients({ tenant, pageSize: 100 });
    show(
      output,
      table(
        'Clients',
        ['Name', 'Client id', 'Type', 'Redirect URIs', 'Scopes', 'Created', ''],
        clients.map((registered) => {
          const box = el('div');
          const remove = el('button', {
            type: 'button',
            class: 'danger',
            onclick: async () => {
              const done = await run(box, remove, () => client.clients.deleteClient({ tenant, clientId: registered.clientId }));
              if (done) await run(output, null, load);
            },
          }, `Delete ${registered.name}`);
          box.append(remove);
          return [registered.name, el('code', {}, registered.clientId), registered.type, registered.redirectUris.join(' '), registered.allowedScopes.join(' '), formatTime(registered.createTime), box];
        }),
      ),
    );
  }

  const submit = el('button', { type: 'submit' }, 'Register client');
  const form = el(
    'form',
    { class: 'card' },
    el('h2', {}, 'Register a client'),
    el(
      'div',
      { class: 'row' },
      field('Name', el('input', { name: 'name', required: true })),
      field('Type', el('select', { name: 'type' }, el('option', { value: 'public' }, 'public (PKCE, no secret)'), el('option', { value: 'confidential' }, 'confidential (with a secret)'))),
    ),
    field('Redirect URIs', el('textarea', { name: 'redirectUris', rows: 2 }), 'One per line.'),
    field('Allowed scopes', el('input', { name: 'allowedScopes', placeholder: 'openid profile email' }), 'Separated by spaces.'),
    submit,
    createOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const response = await run(createOutput, submit, () =>
      client.clients.createClient({
        tenant,
        name: formText(form, 'name'),
        type: formText(form, 'type'),
        redirectUris: words(formText(form, 'redirectUris')),
        allowedScopes: words(formText(form, 'allowedScopes')),
      }),
    );
    if (!response) return;
    form.reset();
    show(
      createOutput,
      el(
        'div',
        { class: 'secret', role: 'status' },
        el('p', {}, response.clientSecret ? 'Registered. The client secret is shown only now; copy it.' : 'Registered.'),
        el('dl', {}, el('dt', {}, 'Client id'), el('dd', {}, el('code', {}, response.clientId)), response.clientSecret ? el('dt', {}, 'Client secret') : null, response.clientSecret ? el('dd', {}, el('code', { class: 'client-secret' }, response.clientSecret)) : null),
      ),
    );
    await run(output, null, load);
  });

  void run(output, null, load);
  return { title: 'Clients', content: el('div', {}, form, output) };
};
