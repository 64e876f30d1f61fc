/**
 * The records store across threads (lib/local/stage-threads.ts remoteResultStore): every write reaches the
 * serving thread; with `keepWritten`, a record this side last wrote is read back without a round trip, as a
 * fresh copy, until a write it does not keep (the terminal one) or a delete sends reads to the store again.
 */
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { remoteResultStore } from '../../lib/local/stage-threads';
import { RpcClient, serveObjects } from '../../lib/local/thread-rpc';

interface Rec {
  state: string;
  n: number;
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function served(failPuts = false) {
  const store = new MemoryResultStore<Rec>({ sweepEveryMs: 0 });
  const calls: string[] = [];
  const counted = {
    putJson: (id: string, json: string, ttlMs: number) => {
      calls.push('putJson');
      if (failPuts) throw new Error('store unavailable');
      return store.putJson(id, json, ttlMs);
    },
    getJson: (id: string) => (calls.push('getJson'), store.getJson(id)),
    delete: (id: string) => (calls.push('delete'), store.delete(id)),
  };
  const { port1, port2 } = new MessageChannel();
  serveObjects(port2, { results: counted });
  const rpc = new RpcClient(port1);
  closers.push(() => rpc.close());
  return { store, calls, remote: remoteResultStore<Rec>(rpc, 'results', (r) => r.state !== 'completed') };
}

describe('remoteResultStore with keepWritten', () => {
  it('answers a read of its own last write here, a fresh copy, and still writes every record to the store', async () => {
    const { store, calls, remote } = served();
    const record = { state: 'handoff', n: 1 };
    await remote.put('a', record, 60_000);
    const back = await remote.get('a');
    expect(back).toEqual(record);
    expect(back).not.toBe(record);
    back!.n = 99;
    expect(await remote.get('a')).toEqual(record);
    expect(calls).toEqual(['putJson']);
    expect(await store.get('a')).toEqual(record);
  });

  it('reads from the store once the last write is one it does not keep, or after a delete, or for another id', async () => {
    const { calls, remote } = served();
    await remote.put('a', { state: 'decoding', n: 1 }, 60_000);
    await remote.put('a', { state: 'completed', n: 2 }, 60_000);
    expect(await remote.get('a')).toEqual({ state: 'completed', n: 2 });
    await remote.put('b', { state: 'decoding', n: 3 }, 60_000);
    await remote.delete('b');
    expect(await remote.get('b')).toBeNull();
    expect(await remote.get('c')).toBeNull();
    expect(calls.filter((c) => c === 'getJson')).toHaveLength(3);
  });

  it('keeps nothing of a write the store did not take, so a read goes to the store', async () => {
    const { calls, remote } = served(true);
    await expect(remote.put('a', { state: 'decoding', n: 1 }, 60_000)).rejects.toThrow('store unavailable');
    expect(await remote.get('a')).toBeNull();
    expect(calls).toEqual(['putJson', 'getJson']);
  });
});
