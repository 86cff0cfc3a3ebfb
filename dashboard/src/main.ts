// The dashboard's entry point: a hash router that draws the header, the navigation and one
// page at a time. Pages are plain DOM built with `el`; every call goes through the TypeScript
// SDK over Connect to the server that served this page.
import { el, show } from './dom.ts';
import { clientFor, loadSession, signOut, type DashboardSession } from './session.ts';
import type { TansuClient } from '../../sdk/ts/src/index.ts';
import { clientsPage } from './pages/clients.ts';
import { deadLettersPage } from './pages/dead-letters.ts';
import { functionPage } from './pages/function.ts';
import { functionsPage } from './pages/functions.ts';
import { invitationsPage } from './pages/invitations.ts';
import { oauthProvidersPage } from './pages/oauth-providers.ts';
import { settingsPage } from './pages/settings.ts';
import { signInPage } from './pages/sign-in.ts';
import { tenantsPage } from './pages/tenants.ts';
import { usersPage } from './pages/users.ts';

/** What a page gets: the session, an SDK client for the tenant in the address, and the route. */
export interface PageContext {
  session: DashboardSession;
  /** Tenant the page is about; empty on platform pages. */
  tenant: string;
  client: TansuClient;
  /** Path segments after the tenant section, such as a function name and a tab. */
  params: string[];
}

/** A page: its title and its content, built from the context. */
export type Page = (context: PageContext) => { title: string; content: HTMLElement };

/** The sections of one tenant, in navigation order. */
const TENANT_SECTIONS: [string, string, Page][] = [
  ['users', 'Users', usersPage],
  ['invitations', 'Invitations', invitationsPage],
  ['clients', 'Clients', clientsPage],
  ['oauth-providers', 'OAuth providers', oauthProvidersPage],
  ['settings', 'Settings', settingsPage],
  ['functions', 'Functions', functionsPage],
  ['dead-letters', 'Dead letters', deadLettersPage],
];

/** Moves to a dashboard route such as `/t/acme/users`. */
export function navigate(route: string): void {
  location.hash = `#${route}`;
}

function header(session: DashboardSession | undefined): HTMLElement {
  const signedIn = session
    ? el(
        'div',
        { class: 'who' },
        el('span', {}, `${session.email} (${session.kind === 'platform' ? 'platform admin' : `admin of ${session.tenant}`})`),
        el('button', {
          type: 'button',
          onclick: async () => {
            await signOut().catch(() => undefined);
            navigate('/sign-in');
          },
        }, 'Sign out'),
      )
    : null;
  return el('header', { class: 'top' }, el('a', { href: '#/', class: 'brand' }, 'Tansu dashboard'), signedIn);
}

function navigation(session: DashboardSession, tenant: string, current: string): HTMLElement {
  const link = (route: string, text: string, active: boolean) =>
    el('li', {}, el('a', { href: `#${route}`, 'aria-current': active ? 'page' : undefined }, text));
  const items: HTMLElement[] = [];
  if (session.kind === 'platform') items.push(link('/tenants', 'Tenants', current === 'tenants'));
  if (tenant) {
    items.push(el('li', { class: 'tenant-name' }, `Tenant ${tenant}`));
    for (const [section, text] of TENANT_SECTIONS) {
      items.push(link(`/t/${tenant}/${section}`, text, current === section));
    }
  }
  return el('nav', { 'aria-label': 'Sections' }, el('ul', {}, ...items));
}

function render(): void {
  const root = document.getElementById('app');
  if (!root) return;
  const session = loadSession();
  const segments = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);

  if (!session || segments[0] === 'sign-in') {
    const page = signInPage(() => {
      const signedIn = loadSession();
      navigate(signedIn?.kind === 'tenant' ? `/t/${signedIn.tenant}/users` : '/tenants');
    });
    show(root, header(undefined), el('main', { id: 'main' }, heading(page.title), page.content));
    focusHeading(root);
    return;
  }

  let tenant = '';
  let section = segments[0] ?? '';
  let params: string[] = [];
  if (segments[0] === 't' && segments[1]) {
    tenant = segments[1];
    section = segments[2] ?? 'users';
    params = segments.slice(3);
  }
  // A tenant admin sees only their own tenant.
  if (session.kind === 'tenant' && tenant !== session.tenant) {
    navigate(`/t/${session.tenant}/users`);
    return;
  }

  let page: Page | undefined;
  if (!tenant && session.kind === 'platform') {
    page = tenantsPage;
    section = 'tenants';
  } else if (section === 'functions' && params.length > 0) {
    page = functionPage;
  } else {
    page = TENANT_SECTIONS.find(([name]) => name === section)?.[2];
  }
  if (!page) {
    navigate(tenant ? `/t/${tenant}/users` : '/tenants');
    return;
  }

  const built = page({ session, tenant, client: clientFor(tenant), params });
  show(
    root,
    header(session),
    el('div', { class: 'layout' }, navigation(session, tenant, section), el('main', { id: 'main' }, heading(built.title), built.content)),
  );
  document.title = `${built.title} · Tansu dashboard`;
  focusHeading(root);
}

function heading(title: string): HTMLElement {
  return el('h1', { tabindex: -1 }, title);
}

// Moves focus to the new page's heading, so keyboard and screen reader users land on it.
function focusHeading(root: HTMLElement): void {
  root.querySelector<HTMLElement>('main h1')?.focus();
}

window.addEventListener('hashchange', render);
render();
