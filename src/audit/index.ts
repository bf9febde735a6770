/**
 * The audit log: one JSON line per authentication event. Never a token, secret or key:
 * credentials are named by jti, key id or a hash prefix.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { Principal } from '../authn/principal.ts';

export type AuditEventType =
  | 'login' | 'logout' | 'token_issued' | 'refresh' | 'refresh_reuse_detected' | 'revocation'
  | 'api_key_used' | 'service_account_used' | 'authentication_failed' | 'access_denied'
  | 'user_context_asserted' | 'user_context_ignored' | 'introspection' | 'admin' | 'signing_key_rotated';

export interface AuditEvent {
  type: AuditEventType;
  outcome: 'success' | 'failure';
  /** Machine-readable reason (an OAuth error code, or e.g. `reuse_detected`). */
  reason?: string;
  principal?: Pick<Principal, 'sub' | 'auth_method' | 'client_id' | 'act' | 'provider'> | undefined;
  client?: string | undefined;
  ip?: string | undefined;
  request_id?: string | undefined;
  /** Extra non-secret details (grant type, jti, key id, permission...). */
  [key: string]: unknown;
}

export interface Audit {
  record(event: AuditEvent): void;
  flush(): Promise<void>;
}

const LEVEL_OF: Record<AuditEvent['outcome'], 'info' | 'warn'> = { success: 'info', failure: 'warn' };

export function createAudit(config: Config): Audit {
  if (!config.audit.enabled) return { record() {}, async flush() {} };
  const streams: pino.StreamEntry[] = [];
  const dest = config.audit.destination;
  if (dest === 'stdout' || dest === 'both') streams.push({ stream: pino.destination({ fd: 1, sync: false }) });
  if (dest === 'file' || dest === 'both') {
    mkdirSync(dirname(config.audit.file), { recursive: true });
    streams.push({ stream: pino.destination({ dest: config.audit.file, sync: false, mkdir: true }) });
  }
  const logger: Logger = pino(
    { level: config.audit.level, base: { log: 'audit' }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'event' },
    pino.multistream(streams),
  );
  return {
    record(event) {
      const principal = event.principal
        ? { sub: event.principal.sub, auth_method: event.principal.auth_method, client_id: event.principal.client_id, act: event.principal.act, provider: event.principal.provider }
        : undefined;
      logger[LEVEL_OF[event.outcome]]({ ...event, principal }, event.type);
    },
    async flush() {
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}
