/**
 * One copy of the values many cached tokens hold alike: the issuer, audience, scope and roles of
 * the hub's tokens, the protected header of one signing key. A verification parses each token's
 * JSON into strings and arrays of its own, so 10 000 cached tokens held 10 000 copies of each
 * (issue 20, goal 7: the token cache was most of the hub's heap). Arrays and objects handed out are
 * frozen, so no holder can change what the others see.
 *
 * Bounded: when `maxEntries` values are kept the table starts afresh; values already shared stay
 * with their holders, only the table forgets them.
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #shapes = new Map<string, unknown>();
  readonly #maxEntries: number;

  constructor(maxEntries = 4096) {
    this.#maxEntries = maxEntries;
  }

  /** The one copy of `value` (itself, when too long to be worth keeping). */
  string(value: string): string {
    if (value.length > MAX_LENGTH) return value;
    const kept = this.#strings.get(value);
    if (kept !== undefined) return kept;
    if (this.#strings.size >= this.#maxEntries) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  /** The one frozen copy of a list of strings (itself, when it holds anything else or is long). */
  list<T>(value: readonly T[]): readonly T[] {
    if (value.length === 0) return EMPTY as readonly T[];
    if (value.length > MAX_ITEMS || !value.every((v) => typeof v === 'string')) return value;
    return this.#shape(value, () => Object.freeze(value.map((v) => this.string(v as string))) as readonly T[]);
  }

  /** The one frozen copy of a flat object of strings (a JWS protected header); itself otherwise. */
  record<T extends object>(value: T): T {
    const values = Object.values(value);
    if (values.length > MAX_ITEMS || !values.every((v) => typeof v === 'string')) return value;
    // fromEntries defines each member as its own (a member named "__proto__" stays one).
    return this.#shape(value, () => Object.freeze(Object.fromEntries(Object.entries(value).map(([name, v]) => [name, this.string(v as string)]))) as T);
  }

  #shape<T>(value: unknown, make: () => T): T {
    const key = JSON.stringify(value);
    if (key.length > MAX_LENGTH) return value as T;
    const kept = this.#shapes.get(key);
    if (kept !== undefined) return kept as T;
    if (this.#shapes.size >= this.#maxEntries) this.#shapes.clear();
    const made = make();
    this.#shapes.set(key, made);
    return made;
  }
}

const MAX_LENGTH = 512;
const MAX_ITEMS = 32;
const EMPTY: readonly never[] = Object.freeze([]);
