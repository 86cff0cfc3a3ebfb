import { el, field, formText, formatTime, notice, run, show, table } from '../dom.ts';
import type { Page } from '../main.ts';

/** Builds the invitations page: invite by email with a role, list and revoke invitations. */
export const invitationsPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const createOutput = el('div', { 'aria-live': 'polite' });

  async function load() {
    const { invitations } = await client.invitations.listInvitations({ tenant, pageSize: 100 });
    show(
      output,
      table(
        'Invitations',
        ['Email', 'Role', 'State', 'Sent', 'Expires', ''],
        invitations.map((invitation) => {
          const box = el('div');
          const revoke = el('button', {
            type: 'button',
            class: 'danger',
            onclick: async () => {
              const done = await run(box, revoke, () => client.invitations.revokeInvitation({ tenant, invitationId: invitation.invitationId }));
              if (done) await run(output, null, load);
            },
          }, 'Revoke');
          box.append(revoke);
          return [invitation.email, invitation.role, invitation.state, formatTime(invitation.createTime), formatTime(invitation.expireTime), invitation.state === 'pending' ? box : null];
        }),
      ),
    );
  }

  const submit = el('button', { type: 'submit' }, 'Send invitation');
  const form = el(
    'form',
    { class: 'card' },
    el('h2', {}, 'Invite someone'),
    el(
      'div',
      { class: 'row' },
      field('Email', el('input', { name: 'email', type: 'email', required: true })),
      field('Role', el('select', { name: 'role' }, el('option', { value: 'User' }, 'User'), el('option', { value: 'TenantAdmin' }, 'TenantAdmin'))),
    ),
    submit,
    createOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const response = await run(createOutput, submit, () => client.invitations.createInvitation({ tenant, email: formText(form, 'email'), role: formText(form, 'role') }));
    if (!response) return;
    form.reset();
    show(createOutput, notice(`Invited ${response.invitation?.email}.`));
    await run(output, null, load);
  });

  void run(output, null, load);
  return { title: 'Invitations', content: el('div', {}, form, output) };
};
