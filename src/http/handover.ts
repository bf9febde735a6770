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
  /**
   * Set when the fast path already recorded the authentication (metrics, audit) under this
   * request id: the route keeps the id and records nothing more.
   */
  readonly observedAs?: string;
}

const HANDOVER = Symbol('mimir.handover');
type Carrier = IncomingMessage & { [HANDOVER]?: Handover };

export function handOver(raw: IncomingMessage, h: Handover): void {
  (raw as Carrier)[HANDOVER] = h;
}

/** The request id the fast path recorded this request under, if any (Fastify's genReqId keeps it). */
export function handedOverId(raw: IncomingMessage): string | undefined {
  return (raw as Carrier)[HANDOVER]?.observedAs;
}

/** When the fast path authenticated this request (performance.now()), if it did. */
export function handedOverAt(raw: IncomingMessage): number | undefined {
  return (raw as Carrier)[HANDOVER]?.startedAt;
}

/** The fast path's answer for this request, once (then Fastify authenticates as usual). */
export function takeHandover(raw: IncomingMessage): Handover | undefined {
  const carrier = raw as Carrier;
  const h = carrier[HANDOVER];
  if (h) carrier[HANDOVER] = undefined;
  return h;
}

const BODY = Symbol('mimir.handover.body');
type BodyCarrier = IncomingMessage & { [BODY]?: Buffer };

/**
 * A body the fast path read before leaving the request to Fastify (an MCP message it would not
 * relay itself): the stream is spent, so the route reads the body from here.
 */
export function handOverBody(raw: IncomingMessage, body: Buffer): void {
  (raw as BodyCarrier)[BODY] = body;
}

/** The body the fast path read for this request, once; undefined when the stream is still unread. */
export function takeBody(raw: IncomingMessage): Buffer | undefined {
  const carrier = raw as BodyCarrier;
  const body = carrier[BODY];
  if (body) carrier[BODY] = undefined;
  return body;
}
