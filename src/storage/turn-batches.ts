/**
 * The finds asked during one turn of the event loop, read together at its end (`setImmediate`) in
 * batches of at most `size`: how PostgresStore and RedisStore read a turn's finds with one statement
 * or script each (issue 20: a query per find was a write to the server each, which under load cost
 * more CPU than the rest of the request). A find alone in its batch is read alone (`one`). A batch
 * the server refuses (`many` rejects with anything but StoreUnavailableError: one caller's id the
 * server cannot take) is read find by find, so one caller's bad input costs only its own find; an
 * unreachable store fails every find of the batch.
 *
 * @example
 * const finds = new TurnBatches<Find>(256, (f) => readOne(f), (batch) => readAll(batch));
 * finds.add(find); // read with the others asked in this turn
 */
import { StoreUnavailableError } from './adapter.ts';

export class TurnBatches<T extends { reject(error: unknown): void }> {
  readonly #size: number;
  readonly #one: (item: T) => void;
  readonly #many: (batch: readonly T[]) => Promise<void>;
  /** This turn's items; undefined when none wait. */
  #pending: T[] | undefined;

  constructor(size: number, one: (item: T) => void, many: (batch: readonly T[]) => Promise<void>) {
    this.#size = size;
    this.#one = one;
    this.#many = many;
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
    for (let i = 0; i < all.length; i += this.#size) {
      const batch = all.slice(i, i + this.#size);
      if (batch.length === 1) {
        this.#one(batch[0]!);
        continue;
      }
      this.#many(batch).catch((e: unknown) => {
        if (e instanceof StoreUnavailableError) for (const item of batch) item.reject(e);
        else for (const item of batch) this.#one(item);
      });
    }
  }
}
