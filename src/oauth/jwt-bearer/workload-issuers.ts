/**
 * Workload identity issuers (RFC 7523 §2.1): the file MIMIR_WORKLOAD_ISSUERS_FILE names, a JSON
 * array of `{"issuer", "jwksUri", "audience", "subject", "serviceAccount"}` — whose JWTs (a
 * Kubernetes service-account token, a SPIFFE JWT-SVID, a cloud workload token) are good for a
 * token of which service account. Validated once at start; every problem names the file, the
 * entry and the field. The entries are kept in file order: the first that matches a verified
 * token decides.
 */
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet } from 'jose';
import { z } from 'zod';
import { ConfigError } from '../../config/index.ts';
import { jwksUriProblem } from '../../jwt/assertions.ts';
import { CLIENT_ID_PATTERN } from '../../service-accounts/index.ts';

export interface WorkloadIssuer {
  /** `iss` of the tokens, compared exactly. */
  readonly issuer: string;
  /** Where the issuer publishes its signing keys (https, or http on loopback). */
  readonly jwksUri: string;
  /** A value the token's `aud` must hold (a Kubernetes projected token's `audience`). */
  readonly audience: string;
  /** The token's `sub`: exact, or a pattern where `*` stands for any run of characters. */
  readonly subject: string;
  /** The service account the token is good for (must exist and be enabled when it is used). */
  readonly serviceAccount: string;
}

const entrySchema = z.object({
  issuer: z.string().trim().min(1, { error: 'must be the issuer\'s `iss` value' }).max(2000),
  jwksUri: z.string().trim().min(1).max(2000),
  audience: z.string().trim().min(1, { error: 'must be the audience the tokens carry' }).max(2000),
  subject: z.string().trim().min(1, { error: 'must be a subject or a pattern with *' }).max(2000),
  serviceAccount: z.string().regex(CLIENT_ID_PATTERN, { error: 'must be a service account id (letters, digits, ".", "_", "-")' }),
}).strict();

/**
 * Reads and validates the issuers file. Throws ConfigError with one line per problem, each
 * `MIMIR_WORKLOAD_ISSUERS_FILE (<path>): entry <i>: <field>: <what is wrong>`.
 */
export function loadWorkloadIssuers(file: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): WorkloadIssuer[] {
  const where = `MIMIR_WORKLOAD_ISSUERS_FILE (${file})`;
  let doc: unknown;
  try {
    doc = JSON.parse(read(file));
  } catch (e) {
    throw new ConfigError([`${where}: cannot be read as JSON: ${(e as Error).message}`]);
  }
  if (!Array.isArray(doc)) throw new ConfigError([`${where}: must be a JSON array of {"issuer", "jwksUri", "audience", "subject", "serviceAccount"}`]);
  const problems: string[] = [];
  const out: WorkloadIssuer[] = [];
  const keysOf = new Map<string, string>();
  doc.forEach((raw: unknown, i) => {
    const parsed = entrySchema.safeParse(raw);
    // Every problem of the entry at once: its fields, and its jwksUri whenever it is a string.
    const jwksUri = (raw as { jwksUri?: unknown } | null)?.jwksUri;
    const uriProblem = typeof jwksUri === 'string' ? jwksUriProblem(jwksUri.trim()) : undefined;
    if (uriProblem) problems.push(`${where}: entry ${i}: jwksUri: ${uriProblem}`);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`${where}: entry ${i}: ${issue.path.join('.') || 'entry'}: ${issue.message}`);
      return;
    }
    const e = parsed.data;
    // One issuer, one key set: a token's signature is checked once, against its issuer's keys.
    const known = keysOf.get(e.issuer);
    if (known !== undefined && known !== e.jwksUri) problems.push(`${where}: entry ${i}: jwksUri: differs from an earlier entry of the issuer ${e.issuer}; one issuer has one key set`);
    keysOf.set(e.issuer, e.jwksUri);
    out.push(e);
  });
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/**
 * Whether `value` matches `pattern`, where `*` stands for any run of characters (none included)
 * and every other character for itself. Greedy with one backtrack point: O(pattern × value) at
 * worst, never the exponential backtracking a regular expression of many `.*` can fall into.
 */
export function subjectMatches(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** The configured issuers with a key set per issuer, fetched by jose on first use and kept. */
export class WorkloadIssuers {
  readonly entries: readonly WorkloadIssuer[];
  readonly #keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(entries: readonly WorkloadIssuer[]) {
    this.entries = entries;
  }

  knows(issuer: string): boolean {
    return this.entries.some((e) => e.issuer === issuer);
  }

  /** The key set of a known issuer (unknown `kid`s refetch at most every 30 s: jose's cooldown). */
  keySet(issuer: string): ReturnType<typeof createRemoteJWKSet> {
    let set = this.#keySets.get(issuer);
    if (!set) {
      const uri = this.entries.find((e) => e.issuer === issuer)!.jwksUri;
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      this.#keySets.set(issuer, set);
    }
    return set;
  }

  /** The first entry for this issuer whose audience the token carries and whose subject pattern its `sub` matches. */
  match(issuer: string, aud: readonly string[], sub: string): WorkloadIssuer | undefined {
    return this.entries.find((e) => e.issuer === issuer && aud.includes(e.audience) && subjectMatches(e.subject, sub));
  }
}
