/**
 * A Bolt 5 server on loopback that answers every query with no records: just enough Neo4j for the
 * real Mimir (github.com/orneryd/Mimir, which refuses to start without a graph database) to start
 * and serve HTTP, so the hub can be tried in front of it. Mimir uses neo4j-driver 6.0.1, which
 * offers Bolt 5.8–5.0 in a version range (and 255.1, 4.4–4.2 and 3.0, which we decline).
 *
 * Speaks: handshake (version ranges, the highest offered 5.x up to `maxMinor` wins), chunked
 * framing, PackStream v1, HELLO (5.0 carries the credentials, 5.1+ sends LOGON after), LOGON,
 * LOGOFF, RUN, PULL, DISCARD, BEGIN, COMMIT, ROLLBACK, RESET, GOODBYE, TELEMETRY and ROUTE (a
 * routing table naming this stub, for neo4j:// URIs). Anything else gets FAILURE, and the
 * connection IGNOREs requests until RESET, as a real server does. No record is ever sent.
 *
 * Standalone: `node scripts/real-mimir/bolt-stub.ts [port]` (default 7687; 0 = any free port).
 * Credentials are accepted whatever they are and never logged; with `log`, only message names and
 * the first characters of each Cypher query are reported.
 *
 * @example
 * const stub = await startBoltStub({ port: 0 });
 * // NEO4J_URI=stub.url → every session.run() resolves with records: []
 * await stub.close();
 */
import { createServer, type Socket } from 'node:net';

const BOLT_MAGIC = 0x6060b017;

/** Request signatures (Bolt 5 message specification). */
const REQUEST: Record<number, string> = {
  0x01: 'HELLO', 0x02: 'GOODBYE', 0x0f: 'RESET', 0x10: 'RUN', 0x11: 'BEGIN', 0x12: 'COMMIT',
  0x13: 'ROLLBACK', 0x2f: 'DISCARD', 0x3f: 'PULL', 0x54: 'TELEMETRY', 0x66: 'ROUTE', 0x6a: 'LOGON',
  0x6b: 'LOGOFF',
};
const SUCCESS = 0x70;
const IGNORED = 0x7e;
const FAILURE = 0x7f;

/** A PackStream structure: a signature byte and its fields (nodes, dates, points, messages). */
export class Struct {
  readonly signature: number;
  readonly fields: unknown[];
  constructor(signature: number, fields: unknown[]) {
    this.signature = signature;
    this.fields = fields;
  }
}

// ---------------------------------------------------------------------------------------------
// PackStream v1
// ---------------------------------------------------------------------------------------------

/** Decodes one PackStream value at a time from a complete message. */
export class Unpacker {
  private offset = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }

  unpack(): unknown {
    const marker = this.u8();
    if (marker <= 0x7f) return marker; // tiny int 0..127
    if (marker >= 0xf0) return marker - 0x100; // tiny int -16..-1
    const high = marker & 0xf0;
    if (high === 0x80) return this.string(marker & 0x0f);
    if (high === 0x90) return this.list(marker & 0x0f);
    if (high === 0xa0) return this.map(marker & 0x0f);
    if (high === 0xb0) return this.struct(marker & 0x0f);
    switch (marker) {
      case 0xc0: return null;
      case 0xc1: return this.take(8).readDoubleBE(0);
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc8: return this.take(1).readInt8(0);
      case 0xc9: return this.take(2).readInt16BE(0);
      case 0xca: return this.take(4).readInt32BE(0);
      case 0xcb: {
        const n = this.take(8).readBigInt64BE(0);
        return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
      }
      case 0xcc: return Uint8Array.from(this.take(this.u8()));
      case 0xcd: return Uint8Array.from(this.take(this.u16()));
      case 0xce: return Uint8Array.from(this.take(this.u32()));
      case 0xd0: return this.string(this.u8());
      case 0xd1: return this.string(this.u16());
      case 0xd2: return this.string(this.u32());
      case 0xd4: return this.list(this.u8());
      case 0xd5: return this.list(this.u16());
      case 0xd6: return this.list(this.u32());
      case 0xd8: return this.map(this.u8());
      case 0xd9: return this.map(this.u16());
      case 0xda: return this.map(this.u32());
      default: throw new Error(`PackStream: unknown marker 0x${marker.toString(16)}`);
    }
  }

  private take(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new Error('PackStream: value runs past the message');
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  private u8(): number { return this.take(1).readUInt8(0); }
  private u16(): number { return this.take(2).readUInt16BE(0); }
  private u32(): number { return this.take(4).readUInt32BE(0); }
  private string(n: number): string { return this.take(n).toString('utf8'); }
  private list(n: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(this.unpack());
    return out;
  }
  private map(n: number): Record<string, unknown> {
    // Null prototype: keys come from the client ("__proto__" must stay an ordinary key).
    const out: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < n; i++) {
      const key = this.unpack();
      if (typeof key !== 'string') throw new Error('PackStream: map key is not a string');
      out[key] = this.unpack();
    }
    return out;
  }
  private struct(n: number): Struct {
    const signature = this.u8();
    return new Struct(signature, this.list(n));
  }
}

/** Encodes a value as PackStream; only what the stub's answers contain. */
export function pack(value: unknown, out: number[] = []): number[] {
  if (value === null || value === undefined) out.push(0xc0);
  else if (value === true) out.push(0xc3);
  else if (value === false) out.push(0xc2);
  else if (typeof value === 'number' && Number.isInteger(value)) packInt(BigInt(value), out);
  else if (typeof value === 'bigint') packInt(value, out);
  else if (typeof value === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(value);
    out.push(0xc1, ...b);
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    header(bytes.length, 0x80, [0xd0, 0xd1, 0xd2], out);
    out.push(...bytes);
  } else if (Array.isArray(value)) {
    header(value.length, 0x90, [0xd4, 0xd5, 0xd6], out);
    for (const item of value) pack(item, out);
  } else if (value instanceof Struct) {
    if (value.fields.length > 15) throw new Error('PackStream: structure with more than 15 fields');
    out.push(0xb0 | value.fields.length, value.signature);
    for (const field of value.fields) pack(field, out);
  } else if (typeof value === 'object') {
    const entries = Object.entries(value);
    header(entries.length, 0xa0, [0xd8, 0xd9, 0xda], out);
    for (const [k, v] of entries) {
      pack(k, out);
      pack(v, out);
    }
  } else throw new Error(`PackStream: cannot encode ${typeof value}`);
  return out;
}

function header(size: number, tiny: number, sized: [number, number, number], out: number[]): void {
  if (size < 0x10) out.push(tiny | size);
  else if (size <= 0xff) out.push(sized[0], size);
  else if (size <= 0xffff) out.push(sized[1], size >> 8, size & 0xff);
  else out.push(sized[2], (size >>> 24) & 0xff, (size >> 16) & 0xff, (size >> 8) & 0xff, size & 0xff);
}

function packInt(n: bigint, out: number[]): void {
  if (n >= -16n && n <= 127n) out.push(Number(n) & 0xff);
  else if (n >= -128n && n <= 127n) out.push(0xc8, Number(n) & 0xff);
  else if (n >= -32768n && n <= 32767n) {
    const b = Buffer.alloc(2);
    b.writeInt16BE(Number(n));
    out.push(0xc9, ...b);
  } else if (n >= -2147483648n && n <= 2147483647n) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(Number(n));
    out.push(0xca, ...b);
  } else {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    out.push(0xcb, ...b);
  }
}

// ---------------------------------------------------------------------------------------------
// Framing: a message is a sequence of chunks (2-byte big-endian size + data), ended by 00 00.
// ---------------------------------------------------------------------------------------------

/** Frames one message into chunks of at most 65 535 bytes followed by the 00 00 end marker. */
export function frame(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < message.length; at += 0xffff) {
    const chunk = message.subarray(at, at + 0xffff);
    const size = Buffer.alloc(2);
    size.writeUInt16BE(chunk.length);
    parts.push(size, chunk);
  }
  parts.push(Buffer.from([0, 0]));
  return Buffer.concat(parts);
}

/** Collects chunks from a byte stream and yields whole messages (empty ones are NOOP keep-alives). */
class Dechunker {
  private pending: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];

  push(data: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    const messages: Buffer[] = [];
    for (;;) {
      if (this.pending.length < 2) break;
      const size = this.pending.readUInt16BE(0);
      if (size === 0) {
        this.pending = this.pending.subarray(2);
        if (this.parts.length > 0) messages.push(Buffer.concat(this.parts));
        this.parts = [];
        continue;
      }
      if (this.pending.length < 2 + size) break;
      this.parts.push(this.pending.subarray(2, 2 + size));
      this.pending = this.pending.subarray(2 + size);
    }
    return messages;
  }
}

// ---------------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------------

/**
 * Picks the version to speak from the four 32-bit proposals of a Bolt handshake. Each proposal is
 * `range << 16 | minor << 8 | major` and stands for major.minor down to major.(minor - range).
 * The client's order is its preference; the first proposal containing a 5.x we speak wins, with
 * its highest such minor. The manifest proposal (255.x) is declined: we answer a version directly,
 * which a driver offering 255.1 accepts. Returns null when no 5.x is offered.
 */
export function chooseVersion(proposals: number[], maxMinor: number): { major: number; minor: number } | null {
  for (const p of proposals) {
    const major = p & 0xff;
    const minor = (p >> 8) & 0xff;
    const range = (p >> 16) & 0xff;
    if (major !== 5) continue;
    const best = Math.min(minor, maxMinor);
    if (best >= minor - range && best >= 0) return { major: 5, minor: best };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

export interface BoltStubOptions {
  /** Address to listen on; loopback unless told otherwise. */
  host?: string;
  /** Port; 0 picks a free one (default). */
  port?: number;
  /** Highest Bolt 5 minor version to agree to (default 8, the newest neo4j-driver 6.0 offers). */
  maxMinor?: number;
  /** Server agent sent in HELLO's SUCCESS; Mimir looks for "neo4j" or "nornicdb" in it. */
  agent?: string;
  /** Receives one line per connection event and request (message names, query heads; no credentials). */
  log?: (line: string) => void;
}

export interface BoltStub {
  host: string;
  port: number;
  /** bolt://host:port, for NEO4J_URI. */
  url: string;
  /** Versions agreed so far, one per connection ("5.8"), in order. */
  readonly negotiated: string[];
  /** Requests seen so far by name (HELLO, RUN, ...), for checks. */
  readonly seen: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Starts the stub and resolves once it listens.
 *
 * @example
 * const stub = await startBoltStub({ log: console.log });
 * console.log(stub.url); // bolt://127.0.0.1:40123
 */
export async function startBoltStub(options: BoltStubOptions = {}): Promise<BoltStub> {
  const host = options.host ?? '127.0.0.1';
  const maxMinor = options.maxMinor ?? 8;
  const agent = options.agent ?? 'Neo4j/5.26.0';
  const log = options.log ?? (() => {});
  const negotiated: string[] = [];
  const seen = new Map<string, number>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    serve(socket, ++connections);
  });

  function serve(socket: Socket, id: number): void {
    const name = `bolt#${id}`;
    let handshake: Buffer | null = Buffer.alloc(0);
    const dechunker = new Dechunker();
    let failed = false;
    let inTx = false;
    let qid = -1;
    let bookmarks = 0;

    const send = (signature: number, fields: unknown[]) => {
      if (!socket.writable) return;
      socket.write(frame(Buffer.from(pack(new Struct(signature, fields)))));
    };
    const success = (metadata: Record<string, unknown> = {}) => send(SUCCESS, [metadata]);
    const failure = (code: string, message: string) => {
      failed = true;
      // 5.7+ drivers read neo4j_code and gql_status; older ones read code.
      send(FAILURE, [{ code, neo4j_code: code, message, gql_status: '50N42', description: message }]);
    };

    socket.on('data', (data: Buffer) => {
      try {
        if (handshake) {
          handshake = Buffer.concat([handshake, data]);
          if (handshake.length < 20) return;
          if (handshake.readUInt32BE(0) !== BOLT_MAGIC) {
            log(`${name} not Bolt (no magic preamble); closing`);
            socket.destroy();
            return;
          }
          const proposals = [4, 8, 12, 16].map((at) => handshake!.readUInt32BE(at));
          const rest = handshake.subarray(20);
          handshake = null;
          const version = chooseVersion(proposals, maxMinor);
          const reply = Buffer.alloc(4);
          if (!version) {
            log(`${name} no Bolt 5 version offered; declining`);
            socket.end(reply);
            return;
          }
          reply.writeUInt32BE((version.minor << 8) | version.major);
          socket.write(reply);
          negotiated.push(`${version.major}.${version.minor}`);
          log(`${name} Bolt ${version.major}.${version.minor}`);
          if (rest.length === 0) return;
          data = rest;
        }
        for (const message of dechunker.push(data)) handle(new Unpacker(message).unpack());
      } catch (error) {
        log(`${name} protocol error: ${(error as Error).message}; closing`);
        socket.destroy();
      }
    });

    function handle(message: unknown): void {
      if (!(message instanceof Struct)) throw new Error('message is not a structure');
      const request = REQUEST[message.signature] ?? `0x${message.signature.toString(16)}`;
      seen.set(request, (seen.get(request) ?? 0) + 1);
      if (request === 'RUN') {
        const query = typeof message.fields[0] === 'string' ? message.fields[0] : '';
        log(`${name} RUN ${query.replace(/\s+/g, ' ').trim().slice(0, 80)}`);
      } else log(`${name} ${request}`);

      if (request === 'GOODBYE') {
        socket.end();
        return;
      }
      if (request === 'RESET') {
        failed = false;
        inTx = false;
        success();
        return;
      }
      // Bolt server state FAILED: everything but RESET/GOODBYE is IGNORED.
      if (failed) {
        send(IGNORED, []);
        return;
      }
      switch (request) {
        case 'HELLO':
          success({ server: agent, connection_id: name, hints: {} });
          return;
        case 'LOGON':
        case 'LOGOFF':
        case 'TELEMETRY':
          success();
          return;
        case 'BEGIN':
          inTx = true;
          success();
          return;
        case 'RUN':
          if (inTx) qid += 1;
          success(inTx ? { fields: [], t_first: 0, qid } : { fields: [], t_first: 0 });
          return;
        case 'PULL':
        case 'DISCARD':
          success(inTx
            ? { has_more: false, type: 'rw', t_last: 0, db: 'neo4j' }
            : { has_more: false, type: 'rw', t_last: 0, db: 'neo4j', bookmark: `stub:${++bookmarks}` });
          return;
        case 'COMMIT':
          inTx = false;
          success({ bookmark: `stub:${++bookmarks}` });
          return;
        case 'ROLLBACK':
          inTx = false;
          success();
          return;
        case 'ROUTE': {
          const address = `${host}:${port}`;
          success({
            rt: {
              ttl: 300, db: 'neo4j',
              servers: [
                { addresses: [address], role: 'ROUTE' },
                { addresses: [address], role: 'READ' },
                { addresses: [address], role: 'WRITE' },
              ],
            },
          });
          return;
        }
        default:
          failure('Neo.ClientError.Request.Invalid', `The Bolt stub does not speak ${request}`);
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('Bolt stub: no TCP address');
  const port = address.port;

  return {
    host, port, url: `bolt://${host}:${port}`, negotiated, seen,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 7687);
  const stub = await startBoltStub({ port, log: (line) => console.log(`[bolt-stub] ${line}`) });
  console.log(`[bolt-stub] listening on ${stub.url}`);
  const stop = () => void stub.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
