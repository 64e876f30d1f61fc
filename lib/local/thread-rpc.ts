/**
 * Ports across threads: an object in one thread (a queue, a KV store, a stage) called from another
 * over a MessagePort, each call answered by its own reply. `serveObjects` answers calls; `remoteObject`
 * makes a stand-in whose methods post them. A Uint8Array that owns its whole buffer, as an argument
 * or as a result, moves across without a copy: the side that sends it hands it over (as `KvStore.put`
 * callers do, and a served method returning bytes it no longer keeps); anything else is copied.
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

type Service = Record<string, unknown>;

/** Raised in the caller when the thread serving its call is gone (exited, crashed, terminated). */
export class ThreadGoneError extends Error {
  override readonly name = 'ThreadGoneError';
}

/** Answers calls arriving on `port` by calling `services[service][method](...args)`. */
export function serveObjects(port: MessagePort, services: Readonly<Record<string, object>>): void {
  port.on('message', (call: Call) => {
    void answer(port, services, call);
  });
}

async function answer(port: MessagePort, services: Readonly<Record<string, object>>, call: Call): Promise<void> {
  let reply: Reply;
  try {
    const service = services[call.service] as Service | undefined;
    const method = service?.[call.method];
    if (typeof method !== 'function') throw new TypeError(`no method ${call.service}.${call.method} on this thread`);
    reply = { id: call.id, ok: true, value: await (method as (...a: unknown[]) => unknown).apply(service, call.args) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id: call.id, ok: false, error: { name: e.name, message: e.message } };
  }
  try {
    port.postMessage(reply, reply.ok ? handedOver([reply.value]) : []);
  } catch (err) {
    // A value that cannot be cloned is the serving side's bug: tell the caller instead of leaving it waiting.
    port.postMessage({ id: call.id, ok: false, error: { name: 'DataCloneError', message: (err as Error).message } });
  }
}

/** The calling side of one port: every remote object on it shares the reply routing. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private gone: string | null = null;

  constructor(private readonly port: MessagePort) {
    port.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
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
      this.port.postMessage({ id, service, method, args } satisfies Call, handedOver(args));
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

/** Ports, and buffers of Uint8Array arguments that span their whole buffer: moved, not copied. */
function handedOver(args: readonly unknown[]): Transferable[] {
  const out: Transferable[] = [];
  for (const a of args) {
    if (a instanceof MessagePort) out.push(a);
    else if (a instanceof Uint8Array && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) {
      if (a.buffer instanceof ArrayBuffer) out.push(a.buffer);
    }
  }
  return out;
}
