/**
 * Ports across threads: an object in one thread (a queue, a KV store, a stage) called from another
 * over a MessagePort, each call answered by its own reply. `serveObjects` answers calls; `RpcClient`
 * makes stand-ins whose methods post them. Calls made in one turn of the event loop travel as one
 * message, and so do the replies ready in one turn: under load a thread wakes another once for many
 * calls, not once per call. A Uint8Array that owns its whole buffer, as an argument or as a result,
 * moves across without a copy: the side that sends it hands it over (as `KvStore.put` callers do, and
 * a served method returning bytes it no longer keeps); anything else is copied.
 */
import { MessagePort, type Transferable } from 'node:worker_threads';

interface Call {
  readonly id: number;
  readonly service: string;
  readonly method: string;
  readonly args: unknown[];
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

/** What crosses the port: a batch of calls one way, a batch of replies the other. */
type CallBatch = { readonly calls: readonly Call[] };
type ReplyBatch = { readonly replies: readonly Reply[] };

type Service = Record<string, unknown>;

/** Raised in the caller when the thread serving its call is gone (exited, crashed, terminated). */
export class ThreadGoneError extends Error {
  override readonly name = 'ThreadGoneError';
}

/** Messages queued in one turn of the event loop and posted together, with what they hand over. */
class Outbox<T> {
  private items: T[] = [];
  private transfers: Transferable[] = [];
  private scheduled = false;

  constructor(private readonly post: (items: T[], transfers: Transferable[]) => void) {}

  push(item: T, transfers: Transferable[]): void {
    this.items.push(item);
    if (transfers.length > 0) this.transfers.push(...transfers);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const items = this.items;
    const transfers = this.transfers;
    this.items = [];
    this.transfers = [];
    if (items.length > 0) this.post(items, transfers);
  }
}

/** Answers calls arriving on `port` by calling `services[service][method](...args)`. */
export function serveObjects(port: MessagePort, services: Readonly<Record<string, object>>): void {
  const outbox = new Outbox<Reply>((replies, transfers) => {
    try {
      port.postMessage({ replies } satisfies ReplyBatch, transfers);
    } catch (err) {
      // A value that cannot be cloned is the serving side's bug: tell the callers instead of leaving them waiting.
      const error = { name: 'DataCloneError', message: (err as Error).message };
      port.postMessage({ replies: replies.map((r) => ({ id: r.id, ok: false, error })) } satisfies ReplyBatch);
    }
  });
  port.on('message', (message: CallBatch) => {
    if (!Array.isArray(message?.calls)) return;
    for (const call of message.calls)
      void answer(services, call).then((reply) => outbox.push(reply, transfersOf(reply)));
  });
}

async function answer(services: Readonly<Record<string, object>>, call: Call): Promise<Reply> {
  try {
    const service = services[call.service] as Service | undefined;
    const method = service?.[call.method];
    if (typeof method !== 'function') throw new TypeError(`no method ${call.service}.${call.method} on this thread`);
    return { id: call.id, ok: true, value: await (method as (...a: unknown[]) => unknown).apply(service, call.args) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { id: call.id, ok: false, error: { name: e.name, message: e.message } };
  }
}

function transfersOf(reply: Reply): Transferable[] {
  return reply.ok ? handedOver([reply.value]) : [];
}

/** The calling side of one port: every remote object on it shares the reply routing. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly outbox: Outbox<Call>;
  private gone: string | null = null;

  constructor(private readonly port: MessagePort) {
    this.outbox = new Outbox<Call>((calls, transfers) => {
      if (this.gone === null) port.postMessage({ calls } satisfies CallBatch, transfers);
    });
    port.on('message', (message: ReplyBatch) => {
      if (!Array.isArray(message?.replies)) return;
      for (const reply of message.replies) {
        const waiter = this.pending.get(reply.id);
        if (!waiter) continue;
        this.pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.value);
        else waiter.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
      }
    });
    port.on('close', () => this.fail('the thread serving these calls is gone'));
  }

  /** Rejects every call in flight and every later one: the serving thread is gone. */
  fail(reason: string): void {
    this.gone = reason;
    for (const waiter of this.pending.values()) waiter.reject(new ThreadGoneError(reason));
    this.pending.clear();
  }

  call(service: string, method: string, args: unknown[]): Promise<unknown> {
    if (this.gone !== null) return Promise.reject(new ThreadGoneError(this.gone));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.outbox.push({ id, service, method, args }, handedOver(args));
    });
  }

  /** A stand-in for `service` on the serving thread: each listed method returns the remote call's promise. */
  remote<T extends object>(service: string, methods: readonly (keyof T & string)[]): T {
    return Object.fromEntries(
      methods.map((method) => [method, (...args: unknown[]) => this.call(service, method, args)]),
    ) as T;
  }

  close(): void {
    this.fail('closed');
    this.port.close();
  }
}

/** Ports, and buffers of Uint8Array values that span their whole buffer: moved, not copied. */
function handedOver(values: readonly unknown[]): Transferable[] {
  const out: Transferable[] = [];
  for (const v of values) {
    if (v instanceof MessagePort) out.push(v);
    else if (v instanceof Uint8Array && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) {
      if (v.buffer instanceof ArrayBuffer) out.push(v.buffer);
    }
  }
  return out;
}
