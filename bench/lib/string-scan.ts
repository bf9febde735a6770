/**
 * A guard for one way a dependency can slow the whole hub: with V8 in Node 24, once any object
 * inherits from `String.prototype` (ioredis 6.0's `class VerbatimString extends String` did), every
 * optimized `charCodeAt` loop in the process runs about 7× slower, and routers, query-string,
 * cookie and form parsers all scan strings that way. The bench times the same loop inside the hub
 * and in a fresh node process and warns when they differ.
 */
import { execFileSync } from 'node:child_process';

/** Nanoseconds per character of a plain `charCodeAt` loop in this process. */
export function stringScanNs(): number {
  const scan = (s: string) => {
    let sum = 0;
    for (let i = 0; i < s.length; i++) sum += s.charCodeAt(i);
    return sum;
  };
  const text = 'x'.repeat(1024);
  let sink = 0;
  for (let i = 0; i < 20000; i++) sink += scan(text);
  const t = process.hrtime.bigint();
  for (let i = 0; i < 20000; i++) sink += scan(text);
  return Number(process.hrtime.bigint() - t) / 20000 / text.length + (sink < 0 ? 1 : 0);
}

/** The same loop in a fresh node process that loads nothing else. */
export function freshStringScanNs(): number {
  return Number(execFileSync(process.execPath, ['-e', `console.log((${stringScanNs.toString()})())`]).toString().trim());
}
