/** Operational logs (pino). Credentials and secrets are redacted by path. */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'req.headers.dpop',
  'req.headers["x-forwarded-token"]', 'res.headers["set-cookie"]',
  '*.password', '*.secret', '*.client_secret', '*.token', '*.access_token', '*.refresh_token', '*.id_token', '*.code',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { log: 'hub' },
    // Never log query strings: they can carry authorization codes and states.
    serializers: { req: (req: { method: string; url?: string; ip?: string; id?: string }) => ({ id: req.id, method: req.method, path: (req.url ?? '').split('?')[0], ip: req.ip }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
