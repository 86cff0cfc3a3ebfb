import type { OAuthProvider } from '../../../sdk/ts/src/index.ts';
import { el, field, formText, notice, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

/**
 * Builds the OAuth providers page: configure Google, Microsoft or GitHub sign-in, see the
 * masked secret and the callback URL, test the credentials and delete a provider.
 */
export const oauthProvidersPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const saveOutput = el('div', { 'aria-live': 'polite' });
  let configured: OAuthProvider[] = [];

  async function load() {
    configured = (await client.oauthProviders.listOAuthProviders({ tenant, pageSize: 10 })).providers;
    show(
      output,
      table(
        'Providers',
        ['Provider', 'Client id', 'Client secret', 'Enabled', 'Status', 'Callback URL', ''],
        configured.map((provider) => [
          provider.providerId,
          el('code', {}, provider.clientId),
          el('code', {}, provider.clientSecretMasked),
          provider.enabled ? 'yes' : 'no',
          provider.status,
          el('code', {}, provider.callbackUrl),
          providerActions(provider),
        ]),
      ),
    );
  }

  function providerActions(provider: OAuthProvider): HTMLElement {
    const result = el('div', { 'aria-live': 'polite' });
    const test = el('button', {
      type: 'button',
      onclick: async () => {
        const response = await run(result, test, () => client.oauthProviders.testOAuthProvider({ tenant, providerId: provider.providerId }));
        if (!response) return;
        await run(output, null, load);
        show(saveOutput, notice(`${provider.providerId}: ${response.active ? 'the credentials work' : response.status}`));
      },
    }, `Test ${provider.providerId}`);
    const edit = el('button', { type: 'button', onclick: () => fill(provider) }, 'Edit');
    const remove = el('button', {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        const done = await run(result, remove, () => client.oauthProviders.deleteOAuthProvider({ tenant, providerId: provider.providerId }));
        if (done) await run(output, null, load);
      },
    }, 'Delete');
    return el('div', { class: 'actions' }, test, edit, remove, result);
  }

  function fill(provider: OAuthProvider) {
    const controls = form.elements;
    (controls.namedItem('providerId') as HTMLSelectElement).value = provider.providerId;
    (controls.namedItem('clientId') as HTMLInputElement).value = provider.clientId;
    (controls.namedItem('clientSecret') as HTMLInputElement).value = '';
    (controls.namedItem('enabled') as HTMLInputElement).checked = provider.enabled;
    (controls.namedItem('issuer') as HTMLInputElement).value = provider.issuer;
    (controls.namedItem('webBaseUrl') as HTMLInputElement).value = provider.webBaseUrl;
    (controls.namedItem('apiBaseUrl') as HTMLInputElement).value = provider.apiBaseUrl;
    (controls.namedItem('clientId') as HTMLInputElement).focus();
  }

  const submit = el('button', { type: 'submit' }, 'Save provider');
  const form = el(
    'form',
    { class: 'card' },
    el('h2', {}, 'Configure a provider'),
    el(
      'div',
      { class: 'row' },
      field('Provider', el('select', { name: 'providerId' }, ...['google', 'microsoft', 'github'].map((id) => el('option', { value: id }, id)))),
      field('Client id', el('input', { name: 'clientId', required: true })),
      field('Client secret', el('input', { name: 'clientSecret', type: 'password', autocomplete: 'off' }), 'Required for a new provider; leave empty to keep the stored one.'),
    ),
    el('label', { class: 'choice' }, el('input', { type: 'checkbox', name: 'enabled', checked: true }), 'Enabled'),
    el(
      'div',
      { class: 'row' },
      field('Issuer', el('input', { name: 'issuer', type: 'url' }), 'Google and Microsoft; empty for the public issuer.'),
      field('Web base URL', el('input', { name: 'webBaseUrl', type: 'url' }), 'GitHub Enterprise only.'),
      field('API base URL', el('input', { name: 'apiBaseUrl', type: 'url' }), 'GitHub Enterprise only.'),
    ),
    submit,
    saveOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const request = {
      tenant,
      providerId: formText(form, 'providerId'),
      clientId: formText(form, 'clientId'),
      clientSecret: formText(form, 'clientSecret'),
      enabled: (form.elements.namedItem('enabled') as HTMLInputElement).checked,
      issuer: formText(form, 'issuer'),
      webBaseUrl: formText(form, 'webBaseUrl'),
      apiBaseUrl: formText(form, 'apiBaseUrl'),
    };
    const exists = configured.some((provider) => provider.providerId === request.providerId);
    const response = await run(saveOutput, submit, async () =>
      exists ? await client.oauthProviders.updateOAuthProvider(request) : await client.oauthProviders.createOAuthProvider(request),
    );
    if (!response) return;
    form.reset();
    show(saveOutput, notice(`Saved ${response.provider?.providerId}; its secret is stored as ${response.provider?.clientSecretMasked}.`));
    await run(output, null, load);
  });

  void run(output, null, load);
  return { title: 'OAuth providers', content: el('div', {}, form, output) };
};
