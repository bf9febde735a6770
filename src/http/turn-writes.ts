/**
 * Answers written together at the end of each turn of the event loop, not one by one as each is
 * ready (issue 20: "where the kernel's wake-up cost is the gap, change what the hub makes the
 * kernel do").
 *
 * A write on a socket whose reader sleeps in epoll wakes it: on loopback the writer's system call
 * does that wake-up, and on a 2-core VM it was the largest single cost of an answer. Written one
 * by one as the turn works through its requests, most answers found the client asleep again
 * (it had read the previous one meanwhile) and paid a wake-up each; written back to back after
 * the turn's requests are handled, the first wakes the client and the others find it awake.
 * Measured on `mimir-auth serve` (SQLite, 2-core AMD EPYC VM, 32 connections, introspection of a
 * hub JWT): 68-72 µs of CPU per request written at once, 41-42 µs written at the turn's end, and
 * 16 000 → 27 000 req/s. The first write of each turn still goes at once (see `armed`), so a
 * lightly loaded hub answers as before. The bytes, their order on each socket and the number of
 * system calls are unchanged; an answer leaves at most one turn later (setImmediate runs before the
 * loop waits for I/O again).
 *
 * Done at the stream's own seam: each accepted socket's `_write`/`_writev` (what Writable calls
 * with one chunk or the buffered ones, and which calls back when they are written) runs at the
 * turn's end. Writable holds later writes until that callback, so order, back-pressure,
 * `end()`/`finish` and errors behave as before; `destroy()` writes what was written before it first.
 * Two differences remain: answers to requests pipelined on one connection leave one per turn (the
 * next starts at the previous one's 'finish'), and a TLS client whose bad record arrives in the same
 * read as its request loses that answer with its connection (only its own).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

type Callback = (error?: Error | null) => void;
interface StreamWrites {
  _write(chunk: unknown, encoding: BufferEncoding, callback: Callback): void;
  _writev?(chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, callback: Callback): void;
  _destroy(error: Error | null, callback: Callback): void;
}
/** A socket's write waiting for the turn's end: at most one (Writable holds the next until it calls back). */
const PENDING = Symbol('write at turn end');
type Deferring = StreamWrites & { [PENDING]?: (() => void) | undefined };

let queued: Deferring[] = [];

/**
 * Runs the socket's waiting write now, if it has one. What its callback runs (Writable's 'drain',
 * write callbacks, node:http's 'finish') threw, it throws on the next tick, as it did when the write
 * completed at once (Writable calls back on the next tick then): not into this turn's other sockets.
 */
function run(socket: Deferring): void {
  const write = socket[PENDING];
  if (write === undefined) return;
  socket[PENDING] = undefined;
  try {
    write();
  } catch (e) {
    process.nextTick(() => { throw e; });
  }
}

/** True while {@link flush} runs: what its writes' callbacks hand to `_writev` is written in the same flush. */
let flushing = false;
/**
 * Whether this turn has written at once already. The first write of a turn goes at once: at a
 * light load a turn answers one request, which then leaves as it did before (deferred, proxied
 * GETs at a fixed 3 000/s had a p99 of 22-32 ms against 5-15 written at once; with the first at
 * once, 7-8). Under load the turn's other answers follow together at its end.
 */
let armed = false;
function disarm(): void { armed = false; }

/**
 * Writes every waiting socket's write; then, in the same flush, what their callbacks handed on
 * (an answer written in pieces — head, body, end — is one write, then the rest Writable buffered
 * behind it): left to the next turn, each piece waited for another round of I/O (p99 of proxied
 * GETs at a fixed rate went from 11-22 to 25-32 ms).
 */
function flush(): void {
  flushing = true;
  try {
    for (let round = 0; round < 16 && queued.length > 0; round++) {
      const sockets = queued;
      queued = [];
      for (const socket of sockets) run(socket);
    }
  } finally {
    flushing = false;
    if (queued.length > 0) setImmediate(flush);
  }
}

/** Makes this socket's writes wait for the end of the turn (see the module's comment). */
export function writeAtTurnEnd(socket: Socket): void {
  const s = socket as unknown as Deferring;
  const write = s._write;
  const writev = s._writev;
  const destroy = s._destroy;
  const publicDestroy = (socket as unknown as { destroy: (error?: Error, callback?: Callback) => unknown }).destroy;
  const defer = (self: Deferring, callback: Callback, now: (done: Callback) => void) => {
    self[PENDING] = () => {
      let called = false;
      const done: Callback = (error) => { called = true; callback(error); };
      try {
        now(done);
      } catch (e) {
        // Thrown by the write itself: its error. Thrown after it called back: not the write's (run rethrows it).
        if (called) throw e;
        callback(e as Error);
      }
    };
    if (queued.push(self) === 1 && !flushing) setImmediate(flush);
  };
  /** The turn's first write goes at once (and arms the turn's end); true when it was this one. */
  const first = (callback: Callback, now: (done: Callback) => void): boolean => {
    if (armed || flushing) return false;
    armed = true;
    setImmediate(disarm);
    now(callback);
    return true;
  };
  s._write = function deferredWrite(chunk, encoding, callback) {
    if (first(callback, (done) => write.call(this, chunk, encoding, done))) return;
    defer(this, callback, (done) => write.call(this, chunk, encoding, done));
  };
  if (writev) {
    s._writev = function deferredWritev(chunks, callback) {
      if (first(callback, (done) => writev.call(this, chunks, done))) return;
      defer(this, callback, (done) => writev.call(this, chunks, done));
    };
  }
  // destroy() without an error (closeIdleConnections, closeAllConnections, res.destroy()): what was
  // written before it goes first, all of it, as when writes went at once — the waiting write, then
  // what Writable buffered behind it (each write's callback hands the rest to _writev, which waits
  // again). With an error (a broken connection, a parse error), _destroy below writes the waiting one.
  (socket as unknown as { destroy: typeof publicDestroy }).destroy = function destroyAfterWrites(this: Deferring, error?: Error, callback?: Callback) {
    if (!error) for (let i = 0; i < 8 && this[PENDING] !== undefined; i++) run(this);
    return publicDestroy.call(this, error, callback);
  };
  // Destroyed before the turn ends (an answer, then the connection closed: Node's 400 for a request
  // it cannot parse, a drained connection), the socket writes first, as it did when writes went at once.
  s._destroy = function destroyAfterWrite(error, callback) {
    run(this);
    destroy.call(this, error, callback);
  };
}

/**
 * Every connection `server` accepts writes at the turn's end: plain HTTP's socket, or over TLS
 * the TLS socket (whose writes are the ones the answers make; its TCP socket is written natively).
 */
export function answersAtTurnEnd(server: Server, tls: boolean): void {
  server.on(tls ? 'secureConnection' : 'connection', writeAtTurnEnd);
}
