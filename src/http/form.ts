/**
 * `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.2 parameters): one parser and
 * one size limit for the Fastify routes (@fastify/formbody is given this parser) and for the
 * fast path (src/http/fast-path.ts), so both read a body alike.
 */
import { parse } from 'fast-querystring';

/** Largest form body read; a larger one is refused (413). */
export const FORM_BODY_LIMIT = 64 * 1024;

/** A repeated name becomes an array of its values (parseBody then refuses it). */
export function parseForm(body: string): Record<string, unknown> {
  return parse(body);
}
