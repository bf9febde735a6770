/**
 * The consent page: names the client, where it will send the user back, and what it asks for,
 * each permission in words with its code in small print (src/rbac/describe.ts).
 */
import { DEFAULT_BRAND, esc, pageLayout, permissionList, type Brand } from '../../pages/render.ts';
import type { OAuthClient } from '../clients/metadata.ts';

export function consentPage(v: { client: OAuthClient; redirectUri: string; scopes: readonly string[]; resource: string; pendingId: string; user: string }, brand: Brand = DEFAULT_BRAND): string {
  const host = new URL(v.redirectUri).host;
  const name = v.client.client_name ?? v.client.client_id;
  const verified = v.client.source === 'metadata-document'
    ? `<p class="note">Identified by its metadata document at ${esc(new URL(v.client.client_id).host)}.</p>`
    : v.client.source === 'dynamic' ? '<p class="note">This client registered itself; its name is not verified.</p>' : '';
  const scopes = v.scopes.length ? permissionList(v.scopes, 'scopes') : '<ul data-field="scopes"><li>(no permissions)</li></ul>';
  return pageLayout('Allow access', `
<h1>Allow <span data-field="client-name">${esc(name)}</span> to use ${esc(brand.name)}?</h1>
<p>Signed in as <strong>${esc(v.user)}</strong>.</p>
<dl><dt>Client</dt><dd data-field="client-id">${esc(v.client.client_id)}</dd>
<dt>Returns you to</dt><dd data-field="redirect-host">${esc(host)}</dd>
<dt>Resource</dt><dd>${esc(v.resource)}</dd></dl>
${verified}
<p>It will be able to act as you to:</p>${scopes}
<form method="post" action="/auth/authorize/decision">
<input type="hidden" name="request" value="${esc(v.pendingId)}">
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<p></p>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`, brand);
}
