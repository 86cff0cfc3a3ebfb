/**
 * Plays the user's part in an authorization code flow: opens the authorization URL, fills the
 * Tansu sign-in form found there and returns where the form's answer redirects.
 */
export async function signInThroughForm(
  authorizationUrl: URL | string,
  credentials: { email: string; password: string },
): Promise<{ status: number; location?: string; html: string }> {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) return { status: page.status, location: page.headers.get('location') ?? undefined, html };

  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no sign-in form on the page:\n${html}`);
  const form = new URLSearchParams();
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form.set(unescape(match[1]), unescape(match[2]));
  }
  form.set('email', credentials.email);
  form.set('password', credentials.password);
  const answer = await fetch(unescape(action), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
    redirect: 'manual',
  });
  return { status: answer.status, location: answer.headers.get('location') ?? undefined, html: await answer.text() };
}

function unescape(text: string): string {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}
