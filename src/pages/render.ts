/**
 * Server-rendered pages of the sign-in: the provider list, the account page, the error page and
 * the hand-off page after sign-in, in the configured branding (MIMIR_BRAND_*). Plain HTML and one
 * small stylesheet (the accent colour is written into it, so no inline style is needed); no
 * JavaScript. Every interpolated value goes through `esc`.
 */
import { describePermission } from '../rbac/describe.ts';

export const STYLESHEET_PATH = '/auth/assets/hub.css';

/** The pages' product name, logo (https URL or same-origin path) and accent colour (config `brand`). */
export interface Brand {
  readonly name: string;
  readonly logoUrl: string | undefined;
  readonly accent: string;
}

export const DEFAULT_BRAND: Brand = Object.freeze({ name: 'Mimir', logoUrl: undefined, accent: '#2357d9' });

/** Dark text on a light accent, white on a dark one (WCAG 2.1 relative luminance). */
function textOn(hex: string): string {
  const h = hex.length === 4 ? hex.slice(1).split('').map((c) => c + c).join('') : hex.slice(1);
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(h.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 ? '#1d2330' : '#fff';
}

/** The pages' stylesheet in the brand's accent colour (validated as a CSS hex colour by the config). */
export function stylesheet(brand: Pick<Brand, 'accent'> = DEFAULT_BRAND): string {
  const accent = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(brand.accent) ? brand.accent : DEFAULT_BRAND.accent;
  return `
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:32rem;margin:8vh auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0002}
.brand{display:flex;align-items:center;gap:.6rem;margin:0 0 1.2rem;font-weight:600;color:#5b6474}
.brand img{height:2rem;width:auto}
h1{font-size:1.4rem;margin:0 0 1rem}
h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
p{margin:.5rem 0 1rem}
a{color:${accent}}
.providers{display:flex;flex-direction:column;gap:.6rem}
.button,button{display:block;width:100%;padding:.7rem 1rem;border:1px solid #c5cad3;border-radius:8px;background:#fff;
  color:inherit;font:inherit;text-align:center;text-decoration:none;cursor:pointer}
.button:hover,button:hover{background:#eef1f6}
.primary,.primary:hover{background:${accent};border-color:${accent};color:${textOn(accent)}}
.primary:hover{filter:brightness(.9)}
dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem;margin:0 0 1.5rem}
dt{color:#5b6474}
dd{margin:0;overflow-wrap:anywhere}
time,.nowrap{white-space:nowrap}
.permissions{list-style:none;padding:0;margin:0 0 1.5rem}
.permissions li{margin:.45rem 0}
.code{display:block;font:.75rem/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;color:#5b6474;overflow-wrap:anywhere}
.error{border-left:4px solid #c62828;padding-left:1rem}
.note,.request-id{color:#5b6474;font-size:.9rem}
a:focus-visible,button:focus-visible,.button:focus-visible{outline:3px solid ${accent};outline-offset:2px}
input:focus,input:focus-within,select:focus{outline:3px solid ${accent};outline-offset:1px}
main.wide{max-width:64rem;margin:3vh auto}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem .9rem;padding:0;margin:0 0 1.2rem}
nav a[aria-current="page"]{font-weight:700;text-decoration:none;color:#1d2330}
table{border-collapse:collapse;width:100%;margin:0 0 1.2rem;font-size:.9rem}
caption{text-align:left;font-weight:600;margin:.3rem 0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #dde1e8;vertical-align:top;overflow-wrap:break-word}
td button{white-space:nowrap}
td form{margin:0}
td button,.inline button{display:inline-block;width:auto;padding:.25rem .7rem}
.fields{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.6rem 1rem;margin:0 0 .8rem}
label{display:block;font-size:.9rem;color:#3d4452}
input,select{display:block;width:100%;padding:.45rem .5rem;border:1px solid #8a93a3;border-radius:6px;font:inherit;background:#fff;color:inherit}
fieldset{border:1px solid #dde1e8;border-radius:8px;padding:.6rem 1rem;margin:0 0 1rem}
.checks label{display:flex;gap:.5rem;align-items:baseline;flex-wrap:wrap;margin:.2rem 0}
.checks .code{display:inline}
.checks input{width:auto}
form.inline{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin:0 0 1rem}
form.inline button{width:auto}
.notice{border-left:4px solid #2e7d32;padding:.4rem 1rem;background:#eef7ee}
.secret{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap;background:#fff8e1;border:1px solid #e0c36a;border-radius:8px;padding:.6rem 1rem;margin:0 0 1rem}
.secret code{font:.9rem ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.secret button{width:auto}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:1rem;margin:0 0 1rem}
.stats div{border:1px solid #dde1e8;border-radius:8px;padding:.6rem 1rem}
.stats strong{display:block;font-size:1.6rem}
.chart{width:100%;height:auto;max-height:16rem}
.pager{display:flex;gap:1rem;align-items:center}
`.trim();
}

/** The default stylesheet (the default accent). */
export const STYLESHEET = stylesheet();

export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A moment for people, in UTC (the hub does not know the reader's zone): `6 Dec 2026, 14:05 UTC`,
 * in a `<time>` element that never wraps inside.
 *
 * @example
 * formatDate(1796565900) // '6 Dec 2026, 14:05 UTC'
 */
export function formatDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  if (!Number.isFinite(d.getTime())) return '—';
  const hh = String(d.getUTCHours()).padStart(2, '0');
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${hh}:${mm} UTC`;
}

/**
 * The ISO 8601 form of a moment, or undefined when it is no date (not finite, or beyond what a
 * Date holds): stored data renders as "—" instead of failing the page.
 */
export function isoTime(epochMs: number): string | undefined {
  const d = new Date(epochMs);
  return Number.isFinite(d.getTime()) ? d.toISOString() : undefined;
}

function timeElement(epochSeconds: number, field: string): string {
  if (isoTime(epochSeconds * 1000) === undefined) return `<span data-field="${esc(field)}">—</span>`;
  return `<time data-field="${esc(field)}" datetime="${esc(new Date(epochSeconds * 1000).toISOString())}">${esc(formatDate(epochSeconds))}</time>`;
}

/**
 * The page around `body`: title, stylesheet, the brand's name and logo. Also for pages rendered
 * elsewhere (the consent page), so every page looks and is branded the same.
 */
export function pageLayout(title: string, body: string, brand: Brand = DEFAULT_BRAND, head = '', options: { wide?: boolean } = {}): string {
  const logo = brand.logoUrl ? `<img src="${esc(brand.logoUrl)}" alt="">` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · ${esc(brand.name)}</title><link rel="stylesheet" href="${STYLESHEET_PATH}">${head}</head>
<body><main${options.wide ? ' class="wide"' : ''}><div class="brand" data-field="brand">${logo}<span>${esc(brand.name)}</span></div>
${body}</main></body></html>`;
}

/** Permissions in words, each with its code in small print (src/rbac/describe.ts). */
export function permissionList(permissions: readonly string[], field: string): string {
  const items = permissions.map((p) => `<li><span>${esc(describePermission(p))}</span><code class="code">${esc(p)}</code></li>`).join('');
  return `<ul class="permissions" data-field="${esc(field)}">${items}</ul>`;
}

export interface ProviderButton {
  id: string;
  name: string;
}

/** One button per provider: each a plain link to /auth/login?provider=…. */
export function loginPage(providers: readonly ProviderButton[], returnTo: string, brand: Brand = DEFAULT_BRAND, extra: Record<string, string> = {}): string {
  // `extra`: a step-up's prompt / max_age / acr_values, kept on the way to the chosen provider.
  const rt = (returnTo !== '/' ? `&returnTo=${encodeURIComponent(returnTo)}` : '')
    + Object.entries(extra).map(([k, v]) => `&${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('');
  const buttons = providers.map((p) =>
    `<a class="button" data-provider="${esc(p.id)}" href="/auth/login?provider=${encodeURIComponent(p.id)}${esc(rt)}">Sign in with ${esc(p.name)}</a>`).join('\n');
  const body = providers.length
    ? `<div class="providers">${buttons}</div>`
    : '<p>No identity provider is configured. Ask the administrator to set MIMIR_AUTH_PROVIDER or MIMIR_AUTH_PROVIDERS_FILE.</p>';
  return pageLayout('Sign in', `<h1>Sign in to ${esc(brand.name)}</h1>\n${body}`, brand);
}

export interface AccountView {
  sub: string;
  name?: string;
  email?: string;
  provider: string;
  /** The roles the sign-in gave (mapped from the IdP's claims). */
  roles: readonly string[];
  /** Set when none of `roles` is defined by RBAC and its default role applies instead. */
  defaultRole?: string;
  /** The effective permissions, from the one Authorizer (src/authz). */
  permissions: readonly string[];
  signedInAt?: number;
  expiresAt: number;
  groupsOverage?: boolean;
}

export function accountPage(a: AccountView, brand: Brand = DEFAULT_BRAND): string {
  const roles = [...a.roles, ...(a.defaultRole ? [`${a.defaultRole} (default role)`] : [])];
  const row = (label: string, field: string, html: string) => `<dt>${esc(label)}</dt><dd data-field="${esc(field)}">${html}</dd>`;
  const dl = [
    row('Name', 'name', esc(a.name ?? '—')),
    row('Email', 'email', esc(a.email ?? '—')),
    row('User id', 'user-id', esc(a.sub)),
    row('Signed in with', 'signed-in-with', esc(a.provider)),
    row('Roles', 'roles', esc(roles.length ? roles.join(', ') : '(none)')),
    ...(a.signedInAt !== undefined ? [`<dt>Signed in</dt><dd>${timeElement(a.signedInAt, 'signed-in-at')}</dd>`] : []),
    `<dt>Session ends</dt><dd data-field="session-ends">${timeElement(a.expiresAt, 'session-ends-at')}</dd>`,
  ].join('');
  const permissions = a.permissions.length
    ? permissionList(a.permissions, 'permissions')
    : '<p data-field="permissions">Your roles grant no permissions here.</p>';
  const overage = a.groupsOverage
    ? '<p class="note">Your identity provider reported more groups than fit in a token; group-based roles could not be applied.</p>' : '';
  return pageLayout('Your account', `<h1>Signed in</h1><dl>${dl}</dl>${overage}
<h2>What your roles let you do</h2>${permissions}
<p><a href="/auth/account/api-keys">Your API keys</a>: keys that act as you, for scripts and tools.</p>
<form method="post" action="/auth/logout"><button class="primary" type="submit">Sign out</button></form>`, brand);
}

export interface ErrorView {
  status: number;
  title: string;
  message: string;
  /** What the reader can do about it. */
  next?: string;
  retryHref?: string;
  /** The request id (Fastify's), also in the log line the error wrote. */
  requestId?: string;
}

export function errorPage(e: ErrorView, brand: Brand = DEFAULT_BRAND): string {
  const next = e.next ? `<p data-field="next-step"><strong>What to do:</strong> ${esc(e.next)}</p>` : '';
  const retry = e.retryHref ? `<a class="button primary" href="${esc(e.retryHref)}">Try again</a>` : '';
  const id = e.requestId
    ? `<p class="request-id">If you ask for help, give this request id: <code data-field="request-id">${esc(e.requestId)}</code></p>` : '';
  return pageLayout(e.title, `<div class="error"><h1>${esc(e.title)}</h1><p data-field="message">${esc(e.message)}</p></div>${next}${retry}${id}`, brand);
}

/**
 * After sign-in: a page that moves on to `returnTo` (already a same-origin path). A page rather
 * than a 302 so the SameSite=Strict session cookie is sent on the next request: a redirect chain
 * that began at the IdP counts as cross-site.
 */
export function continuePage(returnTo: string, brand: Brand = DEFAULT_BRAND): string {
  return pageLayout('Signed in', `<h1>Signed in</h1><p><a class="button primary" href="${esc(returnTo)}">Continue</a></p>`,
    brand, `<meta http-equiv="refresh" content="0;url=${esc(returnTo)}">`);
}

export function signedOutPage(brand: Brand = DEFAULT_BRAND): string {
  return pageLayout('Signed out', '<h1>Signed out</h1><p>You have been signed out.</p><a class="button" href="/auth/login">Sign in again</a>', brand);
}
