/**
 * What the fast path (src/http/fast-path.ts) worked out for a request it left to Fastify: the
 * authenticator's answer, carried on the request itself so the route takes it over instead of
 * authenticating a second time (src/http/authenticate.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../authn/principal.ts';

export interface Handover {
  readonly startedAt: number;
  /** The authenticator's answer: a Principal, a promise of one, or it throws the refusal. */
  readonly result: () => Principal | Promise<Principal>;
}

const HANDOVER = Symbol('mimir.handover');
type Carrier = IncomingMessage & { [HANDOVER]?: Handover };

export function handOver(raw: IncomingMessage, h: Handover): void {
  (raw as Carrier)[HANDOVER] = h;
}

/** The fast path's answer for this request, once (then Fastify authenticates as usual). */
export function takeHandover(raw: IncomingMessage): Handover | undefined {
  const carrier = raw as Carrier;
  const h = carrier[HANDOVER];
  if (h) carrier[HANDOVER] = undefined;
  return h;
}
