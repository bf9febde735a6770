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

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogArgs = Parameters<Logger['info']>;

/**
 * A request's logger that builds its pino child (bindings: the request id) only when a line is
 * actually written at an enabled level. Fastify otherwise creates a child per request, and most
 * requests log nothing, so that child was pure per-request cost on the hot path.
 */
export class LazyChildLogger {
  readonly #parent: Logger;
  readonly #bindings: pino.Bindings;
  readonly #options: pino.ChildLoggerOptions;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string { return (this.#child ?? this.#parent).level; }
  set level(level: string) { this.#real().level = level; }

  fatal(...args: LogArgs): void { this.#log('fatal', args); }
  error(...args: LogArgs): void { this.#log('error', args); }
  warn(...args: LogArgs): void { this.#log('warn', args); }
  info(...args: LogArgs): void { this.#log('info', args); }
  debug(...args: LogArgs): void { this.#log('debug', args); }
  trace(...args: LogArgs): void { this.#log('trace', args); }
  silent(): void {}

  isLevelEnabled(level: string): boolean { return (this.#child ?? this.#parent).isLevelEnabled(level); }
  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger { return this.#real().child(bindings, options); }

  #log(level: Level, args: LogArgs): void {
    if (this.#child === undefined && !this.#parent.isLevelEnabled(level)) return;
    (this.#real()[level] as (...a: LogArgs) => void)(...args);
  }

  #real(): Logger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options));
  }
}

/**
 * Fastify `childLoggerFactory`: lazy unless the route asks for its own level or serializers, which
 * only a real child can carry.
 *
 * @example
 * Fastify({ loggerInstance: log, childLoggerFactory: lazyChildLogger })
 */
export function lazyChildLogger(logger: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions): Logger {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options);
  return new LazyChildLogger(logger, bindings, options) as unknown as Logger;
}
