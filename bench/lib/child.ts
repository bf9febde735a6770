/**
 * The child side of a bench target: it announces where it listens and answers the parent's
 * requests over the IPC channel. Each target is its own process, so the load generator in the
 * parent never shares a core's event loop with the server it measures.
 */
export type Handler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export function ready(info: Record<string, unknown>, handler: Handler = async (op) => { throw new Error(`unknown op ${op}`); }): void {
  process.on('message', (msg: { id: number; op: string; args?: Record<string, unknown> }) => {
    handler(msg.op, msg.args ?? {}).then(
      (result) => process.send?.({ id: msg.id, result }),
      (e: unknown) => process.send?.({ id: msg.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({ ready: true, ...info });
}

export const port = (): number => Number(process.env.BENCH_PORT ?? 0);
