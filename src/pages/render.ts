/**
 * Server-rendered pages of the sign-in: the provider list, the account page, the error page and
 * the hand-off page after sign-in. Plain HTML and one small stylesheet; no JavaScript. Every
 * interpolated value goes through `esc`.
 */
export const STYLESHEET_PATH = '/auth/assets/hub.css';

export const STYLESHEET = `
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:28rem;margin:10vh auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}
p{margin:.5rem 0 1rem}
.providers{display:flex;flex-direction:column;gap:.6rem}
.button,button{display:block;width:100%;padding:.7rem 1rem;border:1px solid #c5cad3;border-radius:8px;background:#fff;
  color:inherit;font:inherit;text-align:center;text-decoration:none;cursor:pointer}
.button:hover,button:hover{background:#eef1f6}
.primary{background:#2357d9;border-color:#2357d9;color:#fff}
.primary:hover{background:#1a46b5}
dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem;margin:0 0 1.5rem}
dt{color:#5b6474}
dd{margin:0;word-break:break-all}
.error{border-left:4px solid #c62828;padding-left:1rem}
.note{color:#5b6474;font-size:.9rem}
`.trim();

export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Mimir</title><link rel="stylesheet" href="${STYLESHEET_PATH}">${head}</head>
<body><main>${body}</main></body></html>`;
}

export interface ProviderButton {
  id: string;
  name: string;
}

/** One button per provider: each a plain link to /auth/login?provider=…. */
export function loginPage(providers: readonly ProviderButton[], returnTo: string): string {
  const rt = returnTo !== '/' ? `&returnTo=${encodeURIComponent(returnTo)}` : '';
  const buttons = providers.map((p) =>
    `<a class="button" data-provider="${esc(p.id)}" href="/auth/login?provider=${encodeURIComponent(p.id)}${esc(rt)}">Sign in with ${esc(p.name)}</a>`).join('\n');
  const body = providers.length
    ? `<div class="providers">${buttons}</div>`
    : '<p>No identity provider is configured. Ask the administrator to set MIMIR_AUTH_PROVIDER or MIMIR_AUTH_PROVIDERS_FILE.</p>';
  return layout('Sign in', `<h1>Sign in to Mimir</h1>\n${body}`);
}

export interface AccountView {
  sub: string;
  name?: string;
  email?: string;
  provider: string;
  roles: readonly string[];
  expiresAt: number;
  groupsOverage?: boolean;
}

export function accountPage(a: AccountView): string {
  const rows: Array<[string, string]> = [
    ['Name', a.name ?? '—'], ['Email', a.email ?? '—'], ['User id', a.sub], ['Signed in with', a.provider],
    ['Roles', a.roles.length ? a.roles.join(', ') : '(none)'], ['Session ends', new Date(a.expiresAt * 1000).toUTCString()],
  ];
  const dl = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd data-field="${esc(k.toLowerCase().replace(/ /g, '-'))}">${esc(v)}</dd>`).join('');
  const overage = a.groupsOverage
    ? '<p class="note">Your identity provider reported more groups than fit in a token; group-based roles could not be applied.</p>' : '';
  return layout('Your account', `<h1>Signed in</h1><dl>${dl}</dl>${overage}
<form method="post" action="/auth/logout"><button class="primary" type="submit">Sign out</button></form>`);
}

export interface ErrorView {
  status: number;
  title: string;
  message: string;
  retryHref?: string;
}

export function errorPage(e: ErrorView): string {
  const retry = e.retryHref ? `<a class="button primary" href="${esc(e.retryHref)}">Try again</a>` : '';
  return layout(e.title, `<div class="error"><h1>${esc(e.title)}</h1><p>${esc(e.message)}</p></div>${retry}`);
}

/**
 * After sign-in: a page that moves on to `returnTo` (already a same-origin path). A page rather
 * than a 302 so the SameSite=Strict session cookie is sent on the next request: a redirect chain
 * that began at the IdP counts as cross-site.
 */
export function continuePage(returnTo: string): string {
  return layout('Signed in', `<h1>Signed in</h1><p><a class="button primary" href="${esc(returnTo)}">Continue</a></p>`,
    `<meta http-equiv="refresh" content="0;url=${esc(returnTo)}">`);
}

export function signedOutPage(): string {
  return layout('Signed out', '<h1>Signed out</h1><p>You have been signed out.</p><a class="button" href="/auth/login">Sign in again</a>');
}
