/**
 * A per-source-address budget of requests a minute, counted in the Store (so every hub behind one
 * store shares it): unauthenticated endpoints that write to storage (dynamic registration, pushed
 * authorization requests) cannot be used to fill it. HTTP edge only.
 */
import type { FastifyReply } from 'fastify';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';

export interface MinuteLimit {
  /** Counter kind in the Store, one per endpoint (`dcr_rate`, `par_rate`). */
  counter: string;
  /** Requests allowed per address per minute (the variable that sets it names it in the error). */
  limit: number;
  /** What is being limited, for the error description ("registrations"). */
  what: string;
}

/**
 * Counts this request against `ip`'s budget for the current minute; over it, sets `Retry-After`
 * and throws `too_many_requests` (429).
 *
 * @example
 * await limitPerMinute(hub.store, hub.now, reply, req.ip, { counter: 'par_rate', limit: 60, what: 'pushed authorization requests' });
 */
export async function limitPerMinute(store: Store, now: () => number, reply: FastifyReply, ip: string, o: MinuteLimit): Promise<void> {
  const window = Math.floor(now() / 60_000);
  const count = await store.increment(o.counter, `${ip}:${window}`, 1, 120);
  if (count > o.limit) {
    reply.header('retry-after', String(60 - Math.floor((now() % 60_000) / 1000)));
    throw new OAuthError('too_many_requests', `Too many ${o.what} from this address; try again in a minute.`);
  }
}
