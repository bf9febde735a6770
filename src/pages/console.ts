/**
 * The admin console's screens (/auth/admin/) and the personal API keys page
 * (/auth/account/api-keys): server-rendered HTML in the pages' layout and branding
 * (src/pages/render.ts). One script file of the hub's own (the copy button), never an inline
 * script; every form carries the session's CSRF token; every interpolated value goes through `esc`.
 */
import type { ApiKeyView } from '../api-keys/index.ts';
import type { AuditPage, StoredAuditEvent } from '../audit/store.ts';
import type { ActivityMinute } from '../metrics/recent.ts';
import type { ClientListing } from '../oauth/clients/registry.ts';
import type { ServiceAccountView } from '../service-accounts/index.ts';
import type { SessionSummary } from '../sessions/sessions.ts';
import type { SigningKeyRecord } from '../jwt/keys.ts';
import { describePermission } from '../rbac/describe.ts';
import { esc, formatDate, isoTime, pageLayout, type Brand } from './render.ts';

export const CONSOLE_SCRIPT_PATH = '/auth/assets/console.js';
export const CONSOLE_PATH = '/auth/admin/console';
export const PERSONAL_KEYS_PATH = '/auth/account/api-keys';

/** The copy button: copies the text of the element its `data-copy` names, and says so. */
export const CONSOLE_SCRIPT = `'use strict';
document.addEventListener('click', function (e) {
  var button = e.target instanceof Element ? e.target.closest('button[data-copy]') : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute('data-copy'));
  var said = document.getElementById(button.getAttribute('data-copy') + '-copied');
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    if (said) said.textContent = 'Copied to the clipboard.';
  }, function () {
    if (said) said.textContent = 'Could not copy: select the text and copy it yourself.';
  });
});
`;

export type Screen = 'overview' | 'api-keys' | 'service-accounts' | 'clients' | 'sessions' | 'signing-keys' | 'revocations' | 'audit' | 'personal';

const SCREENS: ReadonlyArray<[Screen, string, string]> = [
  ['overview', 'Overview', '/auth/admin/'],
  ['api-keys', 'API keys', `${CONSOLE_PATH}/api-keys`],
  ['service-accounts', 'Service accounts', `${CONSOLE_PATH}/service-accounts`],
  ['clients', 'OAuth clients', `${CONSOLE_PATH}/clients`],
  ['sessions', 'Sessions', `${CONSOLE_PATH}/sessions`],
  ['signing-keys', 'Signing keys', `${CONSOLE_PATH}/signing-keys`],
  ['revocations', 'Revocations', `${CONSOLE_PATH}/revocations`],
  ['audit', 'Audit log', `${CONSOLE_PATH}/audit`],
];

/** What every screen shows above its content: a notice of what was just done, or what went wrong. */
export interface Flash {
  notice?: string;
  error?: string;
  /** A secret shown this once, with a copy button. */
  secret?: { label: string; value: string };
}

export interface ScreenContext {
  brand: Brand;
  csrf: string;
  /** Whether the reader may use the admin screens (the nav shows them). */
  admin: boolean;
  flash?: Flash;
}

function nav(current: Screen, admin: boolean): string {
  const items = [...(admin ? SCREENS : []), ['personal', 'Your API keys', PERSONAL_KEYS_PATH] as const, ['account', 'Your account', '/auth/account'] as const];
  const links = items.map(([id, label, href]) => `<li><a href="${esc(href)}"${id === current ? ' aria-current="page"' : ''}>${esc(label)}</a></li>`).join('');
  return `<nav aria-label="${admin ? 'Admin console' : 'Your account'}"><ul>${links}</ul></nav>`;
}

function flashOf(f: Flash | undefined): string {
  if (!f) return '';
  const parts: string[] = [];
  if (f.error) parts.push(`<div class="error" role="alert" data-field="error"><p>${esc(f.error)}</p></div>`);
  if (f.notice) parts.push(`<p class="notice" role="status" data-field="notice">${esc(f.notice)}</p>`);
  if (f.secret) {
    parts.push(`<div class="secret" data-field="secret-box"><span>${esc(f.secret.label)} (shown this once; copy it now):</span>
<code id="secret" data-field="secret">${esc(f.secret.value)}</code>
<button type="button" data-copy="secret">Copy</button><span id="secret-copied" role="status" class="note"></span></div>`);
  }
  return parts.join('\n');
}

function layout(screen: Screen, title: string, body: string, c: ScreenContext): string {
  return pageLayout(title, `${nav(screen, c.admin)}<h1>${esc(title)}</h1>${flashOf(c.flash)}\n${body}`, c.brand,
    `<script src="${CONSOLE_SCRIPT_PATH}" defer></script>`, { wide: true });
}

const csrfField = (token: string) => `<input type="hidden" name="csrf" value="${esc(token)}">`;

/** A one-button form (revoke, rotate, end...), its button named for screen readers by `label`. */
function actionForm(action: string, fields: Record<string, string>, text: string, label: string, csrf: string): string {
  const hidden = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
  return `<form method="post" action="${esc(action)}">${csrfField(csrf)}${hidden}<button type="submit" aria-label="${esc(label)}">${esc(text)}</button></form>`;
}

/** A moment, or "—" when there is none or it is no date (stored data never fails the page). */
function when(epochSeconds: number | undefined): string {
  const iso = epochSeconds === undefined ? undefined : isoTime(epochSeconds * 1000);
  return iso === undefined ? '—' : `<time datetime="${esc(iso)}">${esc(formatDate(epochSeconds!))}</time>`;
}

function table(caption: string, field: string, head: readonly string[], rows: readonly string[][], empty: string): string {
  if (!rows.length) return `<p data-field="${esc(field)}">${esc(empty)}</p>`;
  const th = head.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('\n');
  return `<table data-field="${esc(field)}"><caption>${esc(caption)}</caption><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function input(name: string, label: string, attrs = ''): string {
  return `<div><label for="f-${esc(name)}">${esc(label)}</label><input id="f-${esc(name)}" name="${esc(name)}" ${attrs}></div>`;
}

function select(name: string, label: string, options: ReadonlyArray<[string, string]>, selected = ''): string {
  const opts = options.map(([v, l]) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(l)}</option>`).join('');
  return `<div><label for="f-${esc(name)}">${esc(label)}</label><select id="f-${esc(name)}" name="${esc(name)}">${opts}</select></div>`;
}

const EXPIRY: ReadonlyArray<[string, string]> = [['', 'Never'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days'], ['365d', '1 year']];

// --- Overview: the metrics summary ---

export interface OverviewView {
  minutes: readonly ActivityMinute[];
}

const SERIES: ReadonlyArray<[keyof Omit<ActivityMinute, 'start'>, string, string]> = [
  ['requests', 'Requests', '#2357d9'],
  ['denials', 'Denials', '#c62828'],
  ['tokens', 'Tokens issued', '#2e7d32'],
];

/** The last hour as a line chart: inline SVG, drawn here (no script, no style attribute). */
export function activityChart(minutes: readonly ActivityMinute[]): string {
  const w = 640;
  const h = 220;
  const left = 44;
  const bottom = 28;
  const top = 12;
  const right = 12;
  const max = Math.max(1, ...minutes.flatMap((m) => [m.requests, m.denials, m.tokens]));
  const n = Math.max(1, minutes.length - 1);
  const x = (i: number) => left + (i * (w - left - right)) / n;
  const y = (v: number) => top + (h - top - bottom) * (1 - v / max);
  const lines = SERIES.map(([key, label, colour]) => {
    const points = minutes.map((m, i) => `${x(i).toFixed(1)},${y(m[key]).toFixed(1)}`).join(' ');
    return `<polyline data-series="${key}" fill="none" stroke="${colour}" stroke-width="2" points="${points}"><title>${esc(label)}</title></polyline>`;
  }).join('');
  const axis = `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#8a93a3"/><line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#8a93a3"/>`;
  const labels = `<text x="${left - 6}" y="${top + 4}" text-anchor="end" font-size="11" fill="#3d4452">${max}</text>`
    + `<text x="${left - 6}" y="${h - bottom}" text-anchor="end" font-size="11" fill="#3d4452">0</text>`
    + `<text x="${left}" y="${h - 8}" font-size="11" fill="#3d4452">60 min ago</text>`
    + `<text x="${w - right}" y="${h - 8}" text-anchor="end" font-size="11" fill="#3d4452">now</text>`;
  const totals = SERIES.map(([key, label]) => `${label}: ${minutes.reduce((a, m) => a + m[key], 0)}`).join(', ');
  return `<svg class="chart" data-field="chart" viewBox="0 0 ${w} ${h}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Requests, denials and tokens issued per minute over the last hour</title><desc id="chart-desc">Totals over the hour: ${esc(totals)}. Highest minute: ${max}.</desc>
${axis}${labels}${lines}</svg>`;
}

export function overviewScreen(v: OverviewView, c: ScreenContext): string {
  const stats = SERIES.map(([key, label, colour]) => {
    const total = v.minutes.reduce((a, m) => a + m[key], 0);
    return `<div><span>${esc(label)}</span><strong data-field="total-${key}">${total}</strong><svg width="24" height="6" aria-hidden="true"><rect width="24" height="6" fill="${colour}"/></svg></div>`;
  }).join('');
  return layout('overview', 'Admin console', `<h2>The last hour on this instance</h2>
<div class="stats" data-field="stats">${stats}</div>
<figure>${activityChart(v.minutes)}<figcaption class="note">Per minute: requests authenticated (blue), denials — failed authentications and refused permissions (red), access tokens issued (green). Counted by this hub instance since it started.</figcaption></figure>`, c);
}

// --- API keys ---

function keyRows(keys: readonly ApiKeyView[], revokeAction: string, csrf: string, showOwner: boolean): string[][] {
  return keys.map((k) => [
    `<span data-field="key-name">${esc(k.name)}</span>`,
    `<code>${esc(k.id)}</code>`,
    ...(showOwner ? [esc(k.owner ? k.owner.email ?? k.owner.sub : '—')] : []),
    esc(k.roles.join(', ') || '—'),
    esc(k.scopes?.join(' ') ?? 'all of its roles'),
    `<span data-field="key-status">${esc(k.status)}</span>`,
    when(k.createdAt), when(k.expiresAt), when(k.lastUsedAt),
    k.status === 'active' ? actionForm(revokeAction, { id: k.id }, 'Revoke', `Revoke API key ${k.name}`, csrf) : '',
  ]);
}

const KEY_HEAD = ['Name', 'Id', 'Roles', 'Scopes', 'Status', 'Created', 'Expires', 'Last used', 'Action'];

export function apiKeysScreen(keys: readonly ApiKeyView[], roles: readonly string[], c: ScreenContext): string {
  const roleOptions: Array<[string, string]> = [['', '(none)'], ...roles.map((r): [string, string] => [r, r])];
  const form = `<h2>Create an API key</h2>
<form method="post" action="${CONSOLE_PATH}/api-keys" data-form="create-api-key">${csrfField(c.csrf)}
<div class="fields">${input('name', 'Name', 'required maxlength="100" autocomplete="off"')}
${select('role', 'Role', roleOptions)}
${input('scopes', 'Scopes (space-separated permissions; empty: all of the role)', 'autocomplete="off"')}
${select('expires_in', 'Expires after', EXPIRY, '90d')}</div>
<button class="primary" type="submit">Create API key</button></form>`;
  const head = [...KEY_HEAD.slice(0, 2), 'Owner', ...KEY_HEAD.slice(2)];
  return layout('api-keys', 'API keys', `${form}<h2>All API keys</h2>${table('API keys', 'api-keys', head, keyRows(keys, `${CONSOLE_PATH}/api-keys/revoke`, c.csrf, true), 'No API keys yet.')}`, c);
}

/** Any signed-in user: their own keys, made with their own permissions at most. */
export function personalKeysScreen(keys: readonly ApiKeyView[], permissions: readonly string[], who: string, c: ScreenContext): string {
  const checks = permissions.map((p, i) => `<label><input type="checkbox" name="scopes" value="${esc(p)}" id="perm-${i}"> <span>${esc(describePermission(p))}</span> <code class="code">${esc(p)}</code></label>`).join('');
  const form = `<p>Keys you make here act as you (<strong data-field="who">${esc(who)}</strong>): Mimir sees your user id, and a key can do only what you can. Tick permissions to narrow a key; none ticked: everything you hold.</p>
<h2>Create a personal API key</h2>
<form method="post" action="${PERSONAL_KEYS_PATH}" data-form="create-personal-key">${csrfField(c.csrf)}
<div class="fields">${input('name', 'Name', 'required maxlength="100" autocomplete="off"')}
${select('expires_in', 'Expires after', EXPIRY.filter(([v]) => v && parseInt(v, 10) <= 90), '30d')}</div>
${permissions.length ? `<fieldset class="checks"><legend>Permissions (optional)</legend>${checks}</fieldset>` : '<p>Your roles grant no permissions, so a key of yours could do nothing.</p>'}
<button class="primary" type="submit">Create API key</button></form>`;
  return layout('personal', 'Your API keys', `${form}<h2>Your keys</h2>${table('Your API keys', 'api-keys', KEY_HEAD, keyRows(keys, `${PERSONAL_KEYS_PATH}/revoke`, c.csrf, false), 'You have no API keys.')}`, c);
}

// --- Service accounts ---

export function serviceAccountsScreen(accounts: readonly ServiceAccountView[], roles: readonly string[], c: ScreenContext): string {
  const roleOptions: Array<[string, string]> = [['', '(none)'], ...roles.map((r): [string, string] => [r, r])];
  const form = `<h2>Create a service account</h2>
<form method="post" action="${CONSOLE_PATH}/service-accounts" data-form="create-service-account">${csrfField(c.csrf)}
<div class="fields">${input('client_id', 'Client id', 'required maxlength="128" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" autocomplete="off"')}
${input('name', 'Name', 'maxlength="100" autocomplete="off"')}
${select('role', 'Role', roleOptions)}
${input('scopes', 'Scopes (space-separated; empty: all of the role)', 'autocomplete="off"')}</div>
<button class="primary" type="submit">Create service account</button></form>`;
  const rows = accounts.map((a) => [
    `<code data-field="client-id">${esc(a.clientId)}</code>`, esc(a.name), esc(a.roles.join(', ') || '—'), esc(a.scopes.join(' ') || 'all of its roles'),
    `<span data-field="account-status">${a.disabled ? 'disabled' : 'active'}</span>`, when(a.createdAt), when(a.secretRotatedAt),
    `<div class="inline">${actionForm(`${CONSOLE_PATH}/service-accounts/rotate`, { id: a.clientId }, 'Rotate secret', `Rotate secret of ${a.clientId}`, c.csrf)}
${a.disabled
    ? actionForm(`${CONSOLE_PATH}/service-accounts/enable`, { id: a.clientId }, 'Enable', `Enable ${a.clientId}`, c.csrf)
    : actionForm(`${CONSOLE_PATH}/service-accounts/disable`, { id: a.clientId }, 'Disable', `Disable ${a.clientId}`, c.csrf)}</div>`,
  ]);
  return layout('service-accounts', 'Service accounts', `${form}<h2>All service accounts</h2>${table('Service accounts', 'service-accounts',
    ['Client id', 'Name', 'Roles', 'Scopes', 'Status', 'Created', 'Secret rotated', 'Actions'], rows, 'No service accounts yet.')}`, c);
}

// --- OAuth clients ---

function allowlistSection(hosts: readonly string[], c: ScreenContext): string {
  const rows = hosts.map((h) => [`<code data-field="allowed-host">${esc(h)}</code>`,
    actionForm(`${CONSOLE_PATH}/clients/allowlist/remove`, { host: h }, 'Remove', `Remove ${h} from the allowlist`, c.csrf)]);
  return `<h2>Metadata document hosts (CIMD allowlist)</h2>
<p data-field="allowlist-state">${hosts.length ? 'Clients identified by a metadata document URL are accepted only from these hosts.' : 'No allowlist: a client may be identified by a metadata document URL on any host. Add a host to accept only the listed ones.'}</p>
${hosts.length ? table('Allowed hosts', 'allowlist', ['Host', 'Action'], rows, '') : ''}
<form method="post" action="${CONSOLE_PATH}/clients/allowlist/add" class="inline" data-form="allow-host">${csrfField(c.csrf)}${input('host', 'Host (tools.example.com or *.example.com)', 'required maxlength="260" autocomplete="off"')}<button type="submit">Allow host</button></form>`;
}

export function clientsScreen(clients: readonly ClientListing[], allowlist: readonly string[], c: ScreenContext): string {
  const rows = clients.map((cl) => {
    const revokedAt = 'revoked_at' in cl ? cl.revoked_at : undefined;
    const name = 'client_name' in cl ? cl.client_name ?? '' : '';
    const source = cl.source === 'dynamic' ? 'registered (DCR)' : cl.source === 'metadata-document' ? 'metadata document (CIMD)' : 'built in';
    const revocable = cl.source !== 'builtin' && revokedAt === undefined;
    return [
      `<code data-field="client-id">${esc(cl.client_id)}</code>`, esc(name || '—'), esc(source),
      `<span data-field="client-status">${revokedAt === undefined ? 'active' : 'revoked'}</span>`,
      revocable ? actionForm(`${CONSOLE_PATH}/clients/revoke`, { id: cl.client_id }, 'Revoke', `Revoke client ${name || cl.client_id}`, c.csrf) : '',
    ];
  });
  return layout('clients', 'OAuth clients', `<p>Clients of the hub's authorization server: the built-in CLI client, clients that registered themselves (RFC 7591) and clients identified by a metadata document URL. Revoking one refuses it codes and tokens from now on and revokes every refresh token issued to it.</p>
${table('OAuth clients', 'clients', ['Client id', 'Name', 'Kind', 'Status', 'Action'], rows, 'No clients.')}
${allowlistSection(allowlist, c)}`, c);
}

// --- Sessions ---

export function sessionsScreen(sessions: readonly SessionSummary[] | null, user: string, c: ScreenContext): string {
  const filter = `<form method="get" action="${CONSOLE_PATH}/sessions" class="inline" role="search">${input('user', 'User (id, email or name contains)', `value="${esc(user)}" autocomplete="off"`)}<button type="submit">Find sessions</button></form>`;
  if (sessions === null) return layout('sessions', 'Sign-in sessions', '<p data-field="sessions">Sessions are kept in the browsers\' cookies (MIMIR_SESSION_STORAGE=cookie), so they cannot be listed here; end one by its id on the Revocations screen.</p>', c);
  const rows = sessions.map((s) => [
    `<code data-field="sid">${esc(s.sid)}</code>`, esc(s.name ?? s.sub), esc(s.email ?? '—'), esc(s.provider), esc(s.roles.join(', ') || '—'),
    when(s.createdAt), when(s.lastSeenAt), when(s.expiresAt),
    actionForm(`${CONSOLE_PATH}/sessions/end`, { id: s.sid, user }, 'End', `End the session of ${s.email ?? s.sub} signed in ${formatDate(s.createdAt)}`, c.csrf),
  ]);
  return layout('sessions', 'Sign-in sessions', `${filter}${table(user ? `Sessions of users matching "${user}"` : 'Live sessions', 'sessions',
    ['Session id', 'User', 'Email', 'Provider', 'Roles', 'Signed in', 'Last seen', 'Ends', 'Action'], rows, user ? 'No live session of a matching user.' : 'No live sessions.')}`, c);
}

// --- Signing keys ---

export function signingKeysScreen(v: { current: string; keys: readonly SigningKeyRecord[] }, c: ScreenContext): string {
  const rows = v.keys.map((k) => [
    `<code data-field="kid">${esc(k.kid)}</code>`, esc(k.alg), `<span data-field="key-role">${k.kid === v.current ? 'current' : 'retired'}</span>`, when(k.createdAt), when(k.retiredAt), when(k.removeAfter),
  ]);
  return layout('signing-keys', 'Signing keys', `<p>The current key signs new tokens; a retired key still verifies the tokens it signed until it is removed. Rotating makes a new current key; revoke a key (every token it signed stops working) on the Revocations screen.</p>
<form method="post" action="${CONSOLE_PATH}/signing-keys/rotate" data-form="rotate-signing-key">${csrfField(c.csrf)}<button class="primary" type="submit">Rotate the signing key</button></form>
<p></p>${table('Signing keys', 'signing-keys', ['Key id', 'Algorithm', 'Role', 'Created', 'Retired', 'Removed after'], rows, 'No signing keys.')}`, c);
}

// --- Revocations ---

export function revocationsScreen(c: ScreenContext): string {
  return layout('revocations', 'Revocations', `<p>Revoke what has no token to present, on every instance: a sign-in session or refresh family by its session id, an access token by its <code>jti</code>, or a signing key by its key id (every token it signed stops working; the current key is rotated first). API keys, service accounts and clients are revoked on their own screens.</p>
<form method="post" action="${CONSOLE_PATH}/revocations" data-form="revoke">${csrfField(c.csrf)}
<div class="fields">${select('type', 'What', [['session', 'Session (sid)'], ['access_token', 'Access token (jti)'], ['signing_key', 'Signing key (kid)']])}
${input('id', 'Id', 'required maxlength="256" autocomplete="off"')}</div>
<button class="primary" type="submit">Revoke</button></form>`, c);
}

// --- Audit log ---

export interface AuditFilterView {
  principal: string;
  type: string;
  outcome: string;
  /** `YYYY-MM-DDTHH:MM` in UTC, as the datetime-local inputs take them. */
  from: string;
  to: string;
}

export const AUDIT_EVENT_TYPES = ['login', 'logout', 'token_issued', 'refresh', 'refresh_reuse_detected', 'revocation', 'api_key_used', 'service_account_used',
  'authentication_failed', 'access_denied', 'user_context_asserted', 'user_context_ignored', 'introspection', 'admin', 'signing_key_rotated', 'audit_events_dropped'] as const;

function eventDetails(e: StoredAuditEvent): string {
  const parts = Object.entries({ ...(e.reason ? { reason: e.reason } : {}), ...(e.client ? { client: e.client } : {}), ...e.details })
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return esc(parts.join(' · ').slice(0, 400));
}

export function auditScreen(page: AuditPage | null, f: AuditFilterView, c: ScreenContext): string {
  const filter = `<form method="get" action="${CONSOLE_PATH}/audit" role="search" data-form="audit-filter"><div class="fields">
${input('principal', 'Principal (sub or client id contains)', `value="${esc(f.principal)}" autocomplete="off"`)}
${select('type', 'Event', [['', 'Any'], ...AUDIT_EVENT_TYPES.map((t): [string, string] => [t, t])], f.type)}
${select('outcome', 'Outcome', [['', 'Any'], ['success', 'success'], ['failure', 'failure']], f.outcome)}
${input('from', 'From (UTC)', `type="datetime-local" value="${esc(f.from)}"`)}
${input('to', 'To (UTC)', `type="datetime-local" value="${esc(f.to)}"`)}</div>
<button type="submit">Filter</button></form>`;
  if (!page) return layout('audit', 'Audit log', `${filter}<p data-field="audit">Audit events are not kept in the store (MIMIR_AUDIT_RETENTION_DAYS=0): read them at their destination.</p>`, c);
  const rows = page.events.map((e) => [
    `<time datetime="${esc(new Date(e.time).toISOString())}">${esc(new Date(e.time).toISOString().replace('T', ' ').slice(0, 19))} UTC</time>`,
    `<span data-field="event-type">${esc(e.type)}</span>`, `<span data-field="event-outcome">${esc(e.outcome)}</span>`,
    `<span data-field="event-principal">${esc(e.principal ? `${e.principal.sub} (${e.principal.auth_method})` : '—')}</span>`,
    esc(e.ip ?? '—'), eventDetails(e),
  ]);
  const q = (n: number) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) params.set(k, v);
    params.set('page', String(n));
    return `${CONSOLE_PATH}/audit?${params}`;
  };
  const pager = `<nav aria-label="Audit log pages" class="pager">${page.page > 1 ? `<a href="${esc(q(page.page - 1))}" rel="prev">Newer events</a>` : ''}
<span data-field="page">Page ${page.page} of ${page.pages} (${page.capped ? `${page.total.toLocaleString('en-US').replace(',', ' ')}+` : page.total} events)</span>${page.page < page.pages ? `<a href="${esc(q(page.page + 1))}" rel="next">Older events</a>` : ''}</nav>`;
  return layout('audit', 'Audit log', `${filter}${table('Audit events, newest first', 'audit', ['Time', 'Event', 'Outcome', 'Principal', 'Address', 'Details'], rows, 'No event matches.')}${pager}`, c);
}

/** The console's own refusal (not signed in as an administrator): in the console's layout, without the admin screens. */
export function consoleRefusal(title: string, message: string, c: Omit<ScreenContext, 'admin'>): string {
  return layout('overview', title, `<div class="error" role="alert"><p data-field="message">${esc(message)}</p></div>`, { ...c, admin: false });
}

