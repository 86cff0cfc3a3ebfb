import { el, field, formText, run } from '../dom.ts';
import { signInPlatformAdmin, signInTenantAdmin } from '../session.ts';

/**
 * Builds the sign-in page. A platform admin signs in with the password grant of
 * PlatformAuth.CreateToken; a tenant admin with TenantAuth.SignIn in the tenant they name.
 */
export function signInPage(onSignedIn: () => void): { title: string; content: HTMLElement } {
  const output = el('div', { 'aria-live': 'polite' });
  const tenantInput = el('input', { name: 'tenant', autocomplete: 'organization', pattern: '[a-z0-9\\-]{3,40}' });
  const tenantField = field('Tenant', tenantInput, 'The tenant id, such as acme.');
  tenantField.hidden = true;

  const kindChoice = (value: string, text: string, checked: boolean) =>
    el('label', { class: 'choice' }, el('input', { type: 'radio', name: 'kind', value, checked, onchange: update }), text);
  function update() {
    const tenantAdmin = formText(form, 'kind') === 'tenant';
    tenantField.hidden = !tenantAdmin;
    tenantInput.required = tenantAdmin;
  }

  const submit = el('button', { type: 'submit' }, 'Sign in');
  const form = el(
    'form',
    { class: 'card narrow' },
    el('fieldset', {}, el('legend', {}, 'Sign in as'), kindChoice('platform', 'Platform admin', true), kindChoice('tenant', 'Tenant admin', false)),
    tenantField,
    field('Email', el('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' })),
    field('Password', el('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' })),
    submit,
    output,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = formText(form, 'email');
    const password = String(new FormData(form).get('password') ?? '');
    const session = await run(output, submit, () =>
      formText(form, 'kind') === 'tenant'
        ? signInTenantAdmin(formText(form, 'tenant'), email, password)
        : signInPlatformAdmin(email, password),
    );
    if (session) onSignedIn();
  });
  return { title: 'Sign in', content: form };
}
