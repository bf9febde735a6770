/** The consent page: names the client, where it will send the user back, and what it asks for. */
import { esc, STYLESHEET_PATH } from '../../pages/render.ts';
import type { OAuthClient } from '../clients/metadata.ts';

export function consentPage(v: { client: OAuthClient; redirectUri: string; scopes: readonly string[]; resource: string; pendingId: string; user: string }): string {
  const host = new URL(v.redirectUri).host;
  const name = v.client.client_name ?? v.client.client_id;
  const verified = v.client.source === 'metadata-document'
    ? `<p class="note">Identified by its metadata document at ${esc(new URL(v.client.client_id).host)}.</p>`
    : v.client.source === 'dynamic' ? '<p class="note">This client registered itself; its name is not verified.</p>' : '';
  const scopes = v.scopes.length ? v.scopes.map((s) => `<li><code>${esc(s)}</code></li>`).join('') : '<li>(no permissions)</li>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Allow access · Mimir</title><link rel="stylesheet" href="${STYLESHEET_PATH}"></head>
<body><main>
<h1>Allow <span data-field="client-name">${esc(name)}</span> to use Mimir?</h1>
<p>Signed in as <strong>${esc(v.user)}</strong>.</p>
<dl><dt>Client</dt><dd data-field="client-id">${esc(v.client.client_id)}</dd>
<dt>Returns you to</dt><dd data-field="redirect-host">${esc(host)}</dd>
<dt>Resource</dt><dd>${esc(v.resource)}</dd></dl>
${verified}
<p>It asks for:</p><ul data-field="scopes">${scopes}</ul>
<form method="post" action="/auth/authorize/decision">
<input type="hidden" name="request" value="${esc(v.pendingId)}">
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<p></p>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</main></body></html>`;
}
