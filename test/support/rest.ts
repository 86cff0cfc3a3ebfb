/** A REST response: status, parsed JSON body (or text) and headers. */
export interface RestResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Sends a JSON request over HTTP/1.1 and parses the answer. */
export async function rest<T = any>(
  method: string,
  url: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<RestResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // Leaves non-JSON bodies as text.
  }
  return { status: response.status, body, headers: response.headers };
}

/** Gets a platform admin access token through the OAuth-style token endpoint. */
export async function platformAdminToken(baseUrl: string, email: string, password: string): Promise<string> {
  const response = await fetch(`${baseUrl}/identity/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`platform sign-in failed: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Provisions a tenant as platform admin and returns its admin credentials. */
export async function provisionTenant(
  baseUrl: string,
  adminToken: string,
  id: string,
): Promise<{ adminEmail: string; adminPassword: string }> {
  const response = await rest('POST', `${baseUrl}/platform/api/tenants`, {
    token: adminToken,
    body: { id, displayName: `Tenant ${id}` },
  });
  if (response.status !== 200) throw new Error(`provisioning ${id} failed: ${response.status} ${JSON.stringify(response.body)}`);
  return { adminEmail: response.body.adminEmail, adminPassword: response.body.adminPassword };
}
