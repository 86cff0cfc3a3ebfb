import { Code, ConnectError } from '@connectrpc/connect';
import type { FastifyInstance, FastifyReply } from 'fastify';

import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { acceptInvitation, findPendingInvitation } from './invitations-service.ts';
import { tenantOfRoute } from './oauth-server.ts';
import { escapeHtml } from './oauth-sign-in-page.ts';

// The page behind the invitation link `/identity/<tenant>/invitations/accept?token=…`. The link
// token is the only credential: the form carries it in a hidden field and posts it back, so no
// cookie or session is involved and another site cannot post a form that works without it.

const NOT_USABLE = 'This invitation link is unknown, already used, revoked or expired. Ask for a new invitation.';

/** Mounts `GET` and `POST /identity/<tenant>/invitations/accept`. */
export function registerInvitationPage(app: FastifyInstance, platform: Platform): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, text, done) => {
      done(null, new URLSearchParams(String(text)));
    });
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

    scope.get('/identity/:tenant/invitations/accept', async (request, reply) => {
      const tenant = await tenantOfRoute(platform, request);
      if (!tenant) return send(reply, 404, messagePage('Invitation', 'This invitation link names an unknown tenant.'));
      const token = new URLSearchParams(request.url.split('?')[1] ?? '').get('token') ?? '';
      const invitation = await findPendingInvitation(tenant, token);
      if (!invitation) return send(reply, 410, messagePage('Invitation', NOT_USABLE));
      return send(reply, 200, await formPage(tenant, token, invitation.email));
    });

    scope.post('/identity/:tenant/invitations/accept', async (request, reply) => {
      const tenant = await tenantOfRoute(platform, request);
      if (!tenant) return send(reply, 404, messagePage('Invitation', 'This invitation link names an unknown tenant.'));
      const form = request.body instanceof URLSearchParams ? request.body : undefined;
      if (!form) return send(reply, 415, messagePage('Invitation', 'Send the form as application/x-www-form-urlencoded.'));
      const token = form.get('token') ?? '';
      const invitation = await findPendingInvitation(tenant, token);
      if (!invitation) return send(reply, 410, messagePage('Invitation', NOT_USABLE));

      const password = form.get('password') ?? '';
      if (password !== (form.get('password_confirmation') ?? '')) {
        return send(reply, 400, await formPage(tenant, token, invitation.email, 'The two passwords differ.'));
      }
      try {
        await acceptInvitation(tenant, { token, password, displayName: form.get('display_name') ?? '' });
      } catch (error) {
        if (!(error instanceof ConnectError)) throw error;
        // WEAK_PASSWORD can be fixed on the form. A used invitation or an existing email cannot.
        if (error.code === Code.InvalidArgument) {
          return send(reply, 400, await formPage(tenant, token, invitation.email, error.rawMessage));
        }
        platform.logger.info({ tenant: tenant.id, code: error.code, message: error.rawMessage }, 'invitation page could not accept');
        return send(reply, 409, messagePage('Invitation', error.rawMessage));
      }
      platform.logger.info({ tenant: tenant.id }, 'invitation accepted through the invitation page');
      return send(
        reply,
        200,
        messagePage('Invitation accepted', `Your account ${invitation.email} at ${tenant.record.displayName} is ready. You can sign in now.`),
      );
    });
  });
}

/** Sends a page with headers that keep the token out of caches, frames and referrers. */
function send(reply: FastifyReply, status: number, html: string) {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .send(html);
}

async function formPage(tenant: TenantContext, token: string, email: string, error?: string): Promise<string> {
  const minLength = (await tenant.settings()).passwordPolicy.minLength;
  const alert = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return layout(
    `Join ${tenant.record.displayName}`,
    `<p>You are invited to ${escapeHtml(tenant.record.displayName)} as <strong>${escapeHtml(email)}</strong>. Choose a password to accept.</p>
    ${alert}
    <form method="post" action="accept">
      <input type="hidden" name="token" value="${escapeHtml(token)}">
      <label for="display_name">Name (optional)</label>
      <input id="display_name" name="display_name" type="text" autocomplete="name" maxlength="200">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="new-password" required minlength="${minLength}" aria-describedby="password_hint">
      <p id="password_hint" class="hint">At least ${minLength} characters.</p>
      <label for="password_confirmation">Password again</label>
      <input id="password_confirmation" name="password_confirmation" type="password" autocomplete="new-password" required minlength="${minLength}">
      <button type="submit">Accept invitation</button>
    </form>`,
  );
}

function messagePage(title: string, message: string): string {
  return layout(title, `<p role="status">${escapeHtml(message)}</p>`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHtml(title)}</title>
    <style>
      body { font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; padding: 0 1rem; }
      label, input, button { display: block; width: 100%; box-sizing: border-box; }
      input { margin: 0.25rem 0 1rem; padding: 0.5rem; }
      button { padding: 0.6rem; }
      .hint { margin: -0.75rem 0 1rem; font-size: 0.9rem; }
      .error { color: #b00020; }
    </style>
  </head>
  <body>
    <main>
      <h1>${escapeHtml(title)}</h1>
      ${body}
    </main>
  </body>
</html>
`;
}
