/**
 * The client's configuration from the environment — the seed's PCTX variables. The only
 * file of the client that reads `process.env` (the hub's own config lives in src/config).
 */
export type AuthMode = 'api-key' | 'token-forwarding' | 'service-account';

export interface ClientEnvOptions {
  url?: string;
  mode?: AuthMode;
  apiKey?: string;
  serviceAccountId?: string;
  serviceAccountSecret?: string;
  forwardUserContext?: boolean;
  userContextHeader?: string;
  tokenHeader?: string;
  /** Send credentials over plain http to a host that is not loopback (a private network you trust). */
  allowInsecureHttp?: boolean;
}

const MODES: Record<string, AuthMode> = {
  'api-key': 'api-key', api_key: 'api-key', apikey: 'api-key',
  'token-forwarding': 'token-forwarding', token_forwarding: 'token-forwarding',
  'service-account': 'service-account', service_account: 'service-account',
};

/**
 * MIMIR_URL, MIMIR_AUTH_MODE (`api-key` | `token-forwarding` | `service-account`; the seed's
 * underscore spellings too), MIMIR_API_KEY, MIMIR_SERVICE_ACCOUNT_ID,
 * MIMIR_SERVICE_ACCOUNT_SECRET, MIMIR_FORWARD_USER_CONTEXT, MIMIR_USER_CONTEXT_HEADER,
 * MIMIR_TOKEN_HEADER, MIMIR_ALLOW_INSECURE_HTTP. Without MIMIR_AUTH_MODE the mode follows what is set.
 *
 * @example
 * const options = clientOptionsFromEnv(); // then createMimirClient(options)
 */
export function clientOptionsFromEnv(env: Record<string, string | undefined> = process.env): ClientEnvOptions {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const out: ClientEnvOptions = {};
  const url = get('MIMIR_URL') ?? get('MIMIR_PUBLIC_URL');
  if (url) out.url = url;
  const modeText = get('MIMIR_AUTH_MODE');
  if (modeText !== undefined) {
    const mode = MODES[modeText.toLowerCase()];
    if (!mode) throw new Error(`MIMIR_AUTH_MODE: "${modeText}" is not one of api-key, token-forwarding, service-account`);
    out.mode = mode;
  }
  const apiKey = get('MIMIR_API_KEY');
  if (apiKey) out.apiKey = apiKey;
  const id = get('MIMIR_SERVICE_ACCOUNT_ID');
  if (id) out.serviceAccountId = id;
  const secret = get('MIMIR_SERVICE_ACCOUNT_SECRET');
  if (secret) out.serviceAccountSecret = secret;
  const forward = get('MIMIR_FORWARD_USER_CONTEXT');
  if (forward !== undefined) out.forwardUserContext = ['true', '1', 'yes', 'on'].includes(forward.toLowerCase());
  const header = get('MIMIR_USER_CONTEXT_HEADER');
  if (header) out.userContextHeader = header;
  const tokenHeader = get('MIMIR_TOKEN_HEADER');
  if (tokenHeader) out.tokenHeader = tokenHeader;
  const insecure = get('MIMIR_ALLOW_INSECURE_HTTP');
  if (insecure !== undefined) out.allowInsecureHttp = ['true', '1', 'yes', 'on'].includes(insecure.toLowerCase());
  return out;
}

/** `~/.mimir` unless MIMIR_HOME says otherwise (tests, containers). */
export function mimirHome(env: Record<string, string | undefined> = process.env): string | undefined {
  return env.MIMIR_HOME?.trim() || undefined;
}
