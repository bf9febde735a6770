/**
 * The command line of `mimir-auth`, declared once with commander: every command, subcommand,
 * argument and option, with its help. `--help` (or `help COMMAND`) on any of them prints its usage
 * and exits 0 before anything is opened. Each action resolves to the exit code; the modules
 * behind it are loaded only when it runs.
 */
import { Argument, Command, Option } from 'commander';
import { loadConfig } from '../config/index.ts';

/** What an action reports: its exit code. */
export type Exit = (code: number) => void;

const CONFIG_NOTE = `
Getting started:
  mimir-auth serve                                      the hub on ./data (SQLite), http://localhost:9042
  mimir-auth keys create --name NAME --roles admin      the first admin key (no server needed)
  mimir-auth service-accounts create --id ID --roles developer
  mimir-auth doctor                                     what is wrong, and how to fix it
  mimir-auth COMMAND --help                             the options of a command

Configuration comes from MIMIR_* environment variables and ./.env (every variable: mimir-auth config --example).
Exit codes: 0 done, 1 failed, 64 bad command line or input (EX_USAGE), 78 invalid configuration (EX_CONFIG).`;

const ROLES_HELP = 'comma-separated roles of the RBAC configuration (MIMIR_RBAC_CONFIG; default Mimir\'s: admin, developer, analyst, viewer)';
const UNKNOWN_ROLE_HELP = 'accept roles the RBAC configuration does not define yet (the credential gets whatever permissions such a role is given later)';

/**
 * The program. `exit` receives the exit code of the action that ran; `version` is the package's.
 *
 * @example
 * let code = 0;
 * await buildProgram((c) => { code = c; }, '0.1.0').parseAsync(['keys', 'list'], { from: 'user' });
 */
export function buildProgram(exit: Exit, version: string): Command {
  const program = new Command('mimir-auth')
    .description('The Mimir Auth Hub: sign-in, API keys, service accounts and an authenticating proxy in front of Mimir')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand('help [command]', 'print the help of a command')
    .showSuggestionAfterError(true)
    // Thrown, not process.exit: main() turns it into the exit code (0 for help and the version, 64 otherwise).
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`mimir-auth: ${text.replace(/^error: /, '')}`) })
    .addHelpText('after', CONFIG_NOTE);
  const run = <A extends unknown[]>(fn: (...args: A) => Promise<number> | number) => async (...args: A) => exit(await fn(...args));

  program.command('serve').description('start the hub (npm start) and run until SIGTERM or SIGINT')
    .action(run(async () => {
      const { serve, withPortChosen } = await import('./serve.ts');
      return serve(await withPortChosen(loadConfig(), (overrides) => loadConfig(undefined, { overrides })));
    }));

  program.command('config').description('print the effective configuration, secrets redacted')
    .option('--json', 'as JSON')
    .option('--example', 'print every variable with its default and meaning (.env.example)')
    .action(run(async (o: { json?: boolean; example?: boolean }) => (await import('./admin.ts')).configCommand(o)));

  const keys = program.command('keys').description('API keys: create, list, revoke');
  keys.command('create').description('create an API key (shown only this once)')
    .requiredOption('--name <name>', 'a name for people (1-100 characters)')
    .option('--roles <roles>', ROLES_HELP)
    .option('--scopes <scopes>', 'comma-separated permissions narrowing the roles (e.g. nodes:read,search:execute)')
    .option('--expires-in <duration>', 'lifetime: 30d, 12h, 45m or seconds, at most 3650d; default never')
    .option('--allow-unknown-role', UNKNOWN_ROLE_HELP)
    .option('--json', 'print the record and the key as JSON')
    .action(run(async (o: import('./admin.ts').KeyCreateOptions) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.createKey(hub, o));
    }));
  keys.command('list').description('list API keys (never the keys themselves)')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.listKeys(hub, o));
    }));
  keys.command('revoke').description('revoke an API key on every instance')
    .argument('<id>', 'the key id (keys list)')
    .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
    .action(run(async (id: string) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.revokeKey(hub, id));
    }));

  const accounts = program.command('service-accounts').description('service accounts (OAuth client_credentials): create, list, rotate-secret, disable, enable, delete');
  accounts.command('create').description('create a service account; its secret is shown only this once (none with --jwks-file/--jwks-uri)')
    .requiredOption('--id <id>', 'the client_id: 1-128 of letters, digits, ".", "_", "-"')
    .option('--name <name>', 'a name for people')
    .option('--roles <roles>', ROLES_HELP)
    .option('--scopes <scopes>', 'comma-separated permissions narrowing the roles')
    .option('--allow-user-context', 'may act for a user (X-User-* assertions)')
    .option('--allow-token-exchange', 'may exchange tokens (RFC 8693)')
    .addOption(new Option('--jwks-file <file>', 'private_key_jwt: a JWK Set of its public keys (no secret is made)').conflicts('jwksUri'))
    .option('--jwks-uri <url>', 'private_key_jwt: where its public keys are published (https)')
    .option('--allow-unknown-role', UNKNOWN_ROLE_HELP)
    .option('--json', 'print the account and its secret as JSON')
    .action(run(async (o: import('./admin.ts').AccountCreateOptions) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.createAccount(hub, o));
    }));
  accounts.command('list').description('list service accounts')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.listAccounts(hub, o));
    }));
  accounts.command('rotate-secret').description('a new secret; the previous one keeps working for MIMIR_SERVICE_ACCOUNT_SECRET_GRACE seconds')
    .argument('<id>', 'the client_id')
    .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
    .option('--json', 'as JSON')
    .action(run(async (id: string, o: { json?: boolean }) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.rotateAccountSecret(hub, id, o));
    }));
  for (const [name, text] of [['disable', 'refuse its authentication until enabled again'], ['enable', 'accept its authentication again']] as const) {
    accounts.command(name).description(text)
      .argument('<id>', 'the client_id')
      .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
      .action(run(async (id: string) => {
        const a = await import('./admin.ts');
        return a.withHub((hub) => a.setAccountDisabled(hub, id, name === 'disable'));
      }));
  }
  accounts.command('delete').description('delete a service account')
    .argument('<id>', 'the client_id')
    .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
    .action(run(async (id: string) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.deleteAccount(hub, id));
    }));

  const signing = program.command('signing-keys').description('the keys that sign the hub\'s tokens: list, rotate');
  signing.command('list').description('list signing keys: current, published, retired')
    .action(run(async () => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.listSigningKeys(hub));
    }));
  signing.command('rotate').description('a new current signing key; the previous one stays published for MIMIR_SIGNING_KEY_OVERLAP')
    .action(run(async () => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.rotateSigningKey(hub));
    }));

  const clients = program.command('clients').description('OAuth clients of the authorization server (MCP clients): list, revoke');
  clients.command('list').description('list OAuth clients')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.listClients(hub, o));
    }));
  clients.command('revoke').description('a dynamic or metadata-document client gets no more tokens; its refresh tokens are revoked')
    .argument('<client-id>', 'the client_id (clients list)')
    .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
    .action(run(async (id: string) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.revokeClient(hub, id));
    }));

  program.command('revoke').description('revoke by id on every instance: a session ends, an access token stops working, a signing key\'s tokens stop working')
    .addArgument(new Argument('<type>', 'what the id names').choices(['session', 'access_token', 'signing_key']))
    .argument('<id>', 'the session id (sid), token id (jti) or key id (kid)')
    .allowUnknownOption() // an id may begin with "-" (base64url): an operand, not an option
    .action(run(async (type: string, id: string) => {
      const a = await import('./admin.ts');
      return a.withHub((hub) => a.revokeById(hub, type, id));
    }));

  const providers = program.command('providers').description('the identity providers (MIMIR_AUTH_PROVIDER, MIMIR_AUTH_PROVIDERS_FILE)');
  providers.command('check').description('fetch each IdP\'s discovery document and JWKS and report problems')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => {
      const { checkProviders, formatReports } = await import('../oidc/check.ts');
      const reports = await checkProviders(loadConfig());
      console.log(o.json ? JSON.stringify(reports, null, 2) : formatReports(reports));
      return reports.every((r) => r.ok) ? 0 : 1;
    }));

  program.command('routes').description('the effective route table: which permission each upstream route needs')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => (await import('./admin.ts')).routesCommand(o)));

  program.command('doctor').description('check the configuration, store, signing keys, IdPs, clock, upstream Mimir and TLS: ok / warning / problem, with the fix')
    .option('--json', 'as JSON')
    .action(run(async (o: { json?: boolean }) => {
      const { runDoctor, formatChecks } = await import('./doctor.ts');
      const checks = await runDoctor();
      console.log(o.json ? JSON.stringify(checks, null, 2) : formatChecks(checks));
      return checks.some((c) => c.verdict === 'problem') ? 1 : 0;
    }));

  const storage = program.command('storage').description('the hub\'s store: copy it into another');
  storage.command('copy').description('copy every record of the configured store into another, then read each back')
    .requiredOption('--to <url>', 'sqlite:///path/mimir-auth.db, redis://…, rediss://…, redis+sentinel://…, redis+cluster://…, postgres://…')
    .option('--json', 'as JSON')
    .action(run(async (o: { to: string; json?: boolean }) => {
      const { storageCommand, StorageUsageError } = await import('./storage.ts');
      const { UsageError } = await import('./usage-error.ts');
      try {
        return await storageCommand(['copy', '--to', o.to, ...(o.json ? ['--json'] : [])]);
      } catch (e) {
        throw e instanceof StorageUsageError ? new UsageError(e.message) : e;
      }
    }));

  program.command('token').description('print an access token: the signed-in user\'s (login), or a service account\'s with --service-account')
    .option('--service-account <id>', 'a service account\'s token (secret from MIMIR_SERVICE_ACCOUNT_SECRET)')
    .option('--url <url>', 'the hub (with --service-account; default MIMIR_URL or http://localhost:9042)')
    .option('--no-cache', 'with --service-account: do not reuse a cached token')
    .action(run(async (o: { serviceAccount?: string; url?: string; cache: boolean }) => {
      if (o.serviceAccount !== undefined) {
        const { tokenCommand } = await import('../client/cli-token.ts');
        return tokenCommand(['--service-account', o.serviceAccount, ...(o.url ? ['--url', o.url] : []), ...(o.cache ? [] : ['--no-cache'])]);
      }
      return (await import('./user.ts')).userToken();
    }));

  program.command('login').description('sign in through the hub (browser, PKCE, loopback redirect); credentials saved for whoami and token')
    .option('--url <url>', 'the hub; default MIMIR_PUBLIC_URL')
    .option('--no-browser', 'print the sign-in URL instead of opening a browser')
    .option('--timeout <seconds>', 'give up after this many seconds (at least 10)', '300')
    .option('--scope <scope>', 'the scope to ask for')
    .action(run(async (o: { url?: string; browser: boolean; timeout: string; scope?: string }) => (await import('./user.ts')).loginCommand(o)));
  program.command('whoami').description('who the stored credentials belong to')
    .action(run(async () => (await import('./user.ts')).whoamiCommand()));
  program.command('logout').description('revoke at the hub and delete the stored credentials')
    .action(run(async () => (await import('./user.ts')).logoutCommand()));

  program.command('version').description('print the version')
    .action(() => {
      console.log(version);
      exit(0);
    });
  return program;
}

/** Every command of the program, nested ones included, as the words that name it (`['keys', 'create']`). */
export function commandPaths(program: Command): string[][] {
  const out: string[][] = [];
  const walk = (c: Command, path: string[]) => {
    for (const sub of c.commands) {
      const here = [...path, sub.name()];
      out.push(here);
      walk(sub, here);
    }
  };
  walk(program, []);
  return out;
}
