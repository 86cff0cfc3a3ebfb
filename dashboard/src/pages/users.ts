import { UserStatus, type User } from '../../../sdk/ts/src/index.ts';
import { el, field, formText, formatTime, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

const STATUS_NAMES: Record<UserStatus, string> = {
  [UserStatus.UNSPECIFIED]: 'unknown',
  [UserStatus.ACTIVE]: 'active',
  [UserStatus.DISABLED]: 'disabled',
};

/** Builds the users page: search by email, filter by status, disable, enable and set roles. */
export const usersPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const more = el('div');

  const submit = el('button', { type: 'submit' }, 'Search');
  const filters = el(
    'form',
    { class: 'filters', role: 'search' },
    field('Email', el('input', { name: 'email', type: 'search', placeholder: 'Part of an email' })),
    field(
      'Status',
      el('select', { name: 'status' }, el('option', { value: '0' }, 'Any'), el('option', { value: String(UserStatus.ACTIVE) }, 'Active'), el('option', { value: String(UserStatus.DISABLED) }, 'Disabled')),
    ),
    submit,
  );
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    void run(output, submit, () => load(''));
  });

  let rows: User[] = [];
  async function load(pageToken: string) {
    const response = await client.users.listUsers({
      pageSize: 50,
      pageToken,
      email: formText(filters, 'email'),
      status: Number(formText(filters, 'status')) as UserStatus,
    });
    rows = pageToken ? [...rows, ...response.users] : response.users;
    draw();
    show(more, response.nextPageToken ? el('button', { type: 'button', onclick: () => void run(output, null, () => load(response.nextPageToken)) }, 'Load more') : null);
  }

  function draw() {
    show(
      output,
      table(
        'Users',
        ['Email', 'Name', 'Roles', 'Status', 'Last sign-in', 'Actions'],
        rows.map((user) => [user.email, user.displayName, rolesEditor(user), el('span', { class: `status ${STATUS_NAMES[user.status]}` }, STATUS_NAMES[user.status]), formatTime(user.lastSignInTime), statusButton(user)]),
      ),
    );
  }

  function replace(updated: User | undefined) {
    if (!updated) return;
    rows = rows.map((user) => (user.id === updated.id ? updated : user));
    draw();
  }

  function statusButton(user: User): HTMLElement {
    const box = el('div', { class: 'actions' });
    const disabled = user.status === UserStatus.DISABLED;
    const button = el('button', {
      type: 'button',
      class: disabled ? '' : 'danger',
      'aria-label': `${disabled ? 'Enable' : 'Disable'} ${user.email}`,
      onclick: async () => {
        const request = { tenant, userId: user.id };
        const response = await run(error, button, async () => (disabled ? await client.users.enableUser(request) : await client.users.disableUser(request)));
        replace(response?.user);
      },
    }, disabled ? 'Enable' : 'Disable');
    const error = el('div');
    box.append(button, error);
    return box;
  }

  function rolesEditor(user: User): HTMLElement {
    const input = el('input', { name: 'roles', value: user.roles.join(', '), 'aria-label': `Roles of ${user.email}`, size: 18 });
    const error = el('div');
    const save = el('button', { type: 'submit' }, 'Save roles');
    const form = el('form', { class: 'inline' }, input, save, error);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const roles = input.value.split(',').map((role) => role.trim()).filter(Boolean);
      const response = await run(error, save, () => client.users.setUserRoles({ tenant, userId: user.id, roles }));
      replace(response?.user);
    });
    return form;
  }

  void run(output, null, () => load(''));
  return { title: 'Users', content: el('div', {}, filters, output, more) };
};
