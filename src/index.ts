/**
 * mimir-auth-hub as a library: the same authenticator the server uses, framework-neutral,
 * with thin Fastify and Express adapters.
 *
 * @example
 * ```ts
 * import { loadConfig, openHub } from 'mimir-auth-hub';
 * const hub = await openHub(loadConfig());
 * const principal = await hub.authenticator.authenticate({ headers: { 'x-api-key': key } });
 * ```
 */
export { loadConfig, ConfigError, type Config } from './config/index.ts';
export { openHub, type Hub } from './hub.ts';
export { Authenticator, type AuthInput } from './authn/authenticate.ts';
export type { Principal } from './authn/principal.ts';
export { OAuthError, type ErrorCode } from './errors.ts';
export { buildServer } from './http/server.ts';
export { mimirAuth, principalAllows, type MimirAuthOptions, type RouteAuth } from './http/fastify-plugin.ts';
export { mimirAuthExpress, type MimirAuthExpressOptions } from './http/express.ts';
export { Authorizer, type Action, type Decision } from './authz/index.ts';
export { Rbac, allows, covers, loadRbac } from './rbac/policy.ts';
