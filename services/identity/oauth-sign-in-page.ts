/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * The sign-in page of the authorization endpoint: a form that posts the email, the password and
 * the authorization request's parameters (as hidden fields) back to the same endpoint.
 */
export function signInPage(options: {
  tenantName: string;
  clientName: string;
  action: string;
  parameters: Record<string, string>;
  email?: string;
  error?: string;
}): string {
  const hidden = Object.entries(options.parameters)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n      ');
  const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : '';
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Sign in to ${escapeHtml(options.tenantName)}</title>
    <style>
      body { font-family: system-ui, sans-serif; max-width: 22rem; margin: 4rem auto; padding: 0 1rem; }
      label, input, button { display: block; width: 100%; box-sizing: border-box; }
      input { margin: 0.25rem 0 1rem; padding: 0.5rem; }
      button { padding: 0.6rem; }
      .error { color: #b00020; }
    </style>
  </head>
  <body>
    <h1>Sign in</h1>
    <p>${escapeHtml(options.clientName)} asks to sign you in to ${escapeHtml(options.tenantName)}.</p>
    ${error}
    <form method="post" action="${escapeHtml(options.action)}">
      ${hidden}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(options.email ?? '')}">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required>
      <button type="submit">Sign in</button>
    </form>
  </body>
</html>
`;
}

/** A page that explains an authorization request that cannot be redirected back to the app. */
export function errorPage(message: string): string {
  return `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8"><title>Sign-in request rejected</title></head>
  <body><h1>Sign-in request rejected</h1><p>${escapeHtml(message)}</p></body>
</html>
`;
}
