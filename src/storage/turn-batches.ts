/**
 * What is asked during one turn of the event loop, handed over together at its end (`setImmediate`)
 * in batches of at most `size`: how PostgresStore and RedisStore read the finds of one turn with
 * one statement or script each (issue 20: a query per find was a write to the server each, which
 * under load cost more CPU than the rest of the request).
 *
 * @example
 * const finds = new TurnBatches<Find>(256, (batch) => readAll(batch));
 * finds.add(find); // read with the others asked in this turn
 */
export class TurnBatches<T> {
  readonly #size: number;
  readonly #send: (batch: T[]) => void;
  /** This turn's items; undefined when none wait. */
  #pending: T[] | undefined;

  constructor(size: number, send: (batch: T[]) => void) {
    this.#size = size;
    this.#send = send;
  }

  add(item: T): void {
    if (!this.#pending) {
      this.#pending = [];
      setImmediate(() => this.#flush());
    }
    this.#pending.push(item);
  }

  #flush(): void {
    const all = this.#pending ?? [];
    this.#pending = undefined;
    for (let i = 0; i < all.length; i += this.#size) this.#send(all.slice(i, i + this.#size));
  }
}
