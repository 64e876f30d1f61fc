import { afterEach, describe, expect, it } from 'vitest';
import type { Queue } from '../../lib/core/ports';

/** A queue adapter as the contract sees it: the port plus `close()`. */
export interface ClosableQueue extends Queue {
  close(): Promise<void>;
}

export interface QueueUnderTest {
  readonly queue: ClosableQueue;
  /** A second consumer of the same queue (for Redis, another connection, as another process would have). */
  readonly peer: ClosableQueue;
}

export type OpenQueue = (options: { visibilityTimeoutMs: number; maxReceives: number }) => Promise<QueueUnderTest>;

/** Short enough to keep tests quick, long enough to tell "hidden" from "visible" on a loaded machine. */
const VISIBILITY_MS = 200;
/** Timers and the Redis server clock round to whole ms; lower bounds allow this much. */
const SLACK_MS = 30;
/** Upper bound for "woke promptly": under Redis's 1 s blocking slice, so a missing wake-up fails the test. */
const PROMPT_MS = 800;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `Queue` semantics every implementation must have, specified once and run against each. */
export function describeQueueContract(name: string, open: OpenQueue): void {
  describe(`${name} queue contract`, () => {
    const opened: ClosableQueue[] = [];
    const make = async (visibilityTimeoutMs = 10_000, maxReceives = 5): Promise<QueueUnderTest> => {
      const q = await open({ visibilityTimeoutMs, maxReceives });
      opened.push(q.queue, q.peer);
      return q;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((q) => q.close()));
    });

    it('delivers a sent message with receiveCount 1 and removes it for good on ack', async () => {
      const { queue } = await make();
      await queue.send('hello');
      expect(await queue.depth()).toBe(1);
      const [message, ...rest] = await queue.receive(10, 0);
      expect(rest).toEqual([]);
      expect(message).toMatchObject({ body: 'hello', receiveCount: 1 });
      expect(await queue.depth()).toBe(1);
      await queue.ack(message!.receipt);
      expect(await queue.depth()).toBe(0);
      expect(await queue.receive(10, 0)).toEqual([]);
    });

    it('returns at most maxMessages per receive, oldest first', async () => {
      const { queue } = await make();
      for (const body of ['a', 'b', 'c']) await queue.send(body);
      expect((await queue.receive(2, 0)).map((m) => m.body)).toEqual(['a', 'b']);
      expect((await queue.receive(5, 0)).map((m) => m.body)).toEqual(['c']);
    });

    it('hides an un-acked message until the visibility timeout, then redelivers it with receiveCount 2', async () => {
      const { queue } = await make(VISIBILITY_MS);
      await queue.send('job');
      const first = await queue.receive(1, 0);
      const receivedAt = Date.now();
      expect(first).toHaveLength(1);
      expect(await queue.receive(1, 0)).toEqual([]);
      expect(await queue.depth()).toBe(1);
      const second = await queue.receive(1, 5000);
      expect(Date.now() - receivedAt).toBeGreaterThanOrEqual(VISIBILITY_MS - SLACK_MS);
      expect(second).toHaveLength(1);
      expect(second[0]).toMatchObject({ body: 'job', receiveCount: 2 });
      expect(second[0]!.receipt).not.toBe(first[0]!.receipt);
    });

    it('moves a message to the dead-letter list on the receive after maxReceives', async () => {
      const { queue } = await make(10_000, 2);
      await queue.send('poison');
      for (const expected of [1, 2]) {
        const [message] = await queue.receive(1, 0);
        expect(message).toMatchObject({ body: 'poison', receiveCount: expected });
        await queue.release(message!.receipt);
      }
      expect(await queue.receive(1, 0)).toEqual([]);
      expect(await queue.deadLetters()).toEqual(['poison']);
      expect(await queue.depth()).toBe(0);
    });

    it('dead-letters a message whose receives all timed out, and keeps delivering the others', async () => {
      const { queue } = await make(VISIBILITY_MS, 1);
      await queue.send('stuck');
      expect(await queue.receive(1, 0)).toHaveLength(1);
      await queue.send('fine');
      await sleep(VISIBILITY_MS + SLACK_MS);
      const next = await queue.receive(10, 0);
      expect(next.map((m) => m.body)).toEqual(['fine']);
      expect(await queue.deadLetters()).toEqual(['stuck']);
    });

    it('ignores an ack or release with the receipt of an earlier delivery', async () => {
      const { queue } = await make(VISIBILITY_MS);
      await queue.send('job');
      const [first] = await queue.receive(1, 0);
      const [second] = await queue.receive(1, 5000);
      expect(second!.receiveCount).toBe(2);
      await queue.ack(first!.receipt);
      await queue.release(first!.receipt);
      expect(await queue.depth()).toBe(1);
      // The stale release must not have made the in-flight delivery visible again.
      expect(await queue.receive(1, 0)).toEqual([]);
      await queue.ack(second!.receipt);
      expect(await queue.depth()).toBe(0);
    });

    it('invalidates a receipt once it has been released', async () => {
      const { queue } = await make();
      await queue.send('job');
      const [first] = await queue.receive(1, 0);
      await queue.release(first!.receipt);
      await queue.ack(first!.receipt);
      expect(await queue.depth()).toBe(1);
      expect(await queue.receive(1, 0)).toMatchObject([{ body: 'job', receiveCount: 2 }]);
    });

    it('makes a released message receivable at once, counting the failed receive', async () => {
      const { queue } = await make();
      await queue.send('job');
      const [message] = await queue.receive(1, 0);
      await queue.release(message!.receipt);
      expect(await queue.receive(1, 0)).toMatchObject([{ body: 'job', receiveCount: 2 }]);
    });

    it('keeps a message released with a delay hidden for that delay', async () => {
      const { queue } = await make();
      await queue.send('job');
      const [message] = await queue.receive(1, 0);
      const releasedAt = Date.now();
      await queue.release(message!.receipt, 300);
      expect(await queue.receive(1, 0)).toEqual([]);
      const again = await queue.receive(1, 5000);
      expect(Date.now() - releasedAt).toBeGreaterThanOrEqual(300 - SLACK_MS);
      expect(again).toMatchObject([{ body: 'job', receiveCount: 2 }]);
    });

    it('wakes a long poll as soon as a message is sent', async () => {
      const { queue, peer } = await make();
      const start = Date.now();
      const pending = queue.receive(1, 10_000);
      await sleep(100);
      await peer.send('late');
      const got = await pending;
      expect(got.map((m) => m.body)).toEqual(['late']);
      expect(Date.now() - start).toBeLessThan(100 + PROMPT_MS);
    });

    it('wakes a long poll when an in-flight message times out', async () => {
      const { queue, peer } = await make(VISIBILITY_MS);
      await queue.send('job');
      expect(await peer.receive(1, 0)).toHaveLength(1);
      const start = Date.now();
      const got = await queue.receive(1, 10_000);
      expect(got).toMatchObject([{ body: 'job', receiveCount: 2 }]);
      expect(Date.now() - start).toBeLessThan(VISIBILITY_MS + PROMPT_MS);
    });

    it('returns an empty batch once waitMs passes with nothing to receive', async () => {
      const { queue } = await make();
      const start = Date.now();
      expect(await queue.receive(1, 250)).toEqual([]);
      expect(Date.now() - start).toBeGreaterThanOrEqual(250 - SLACK_MS);
    });

    it('gives a message to only one of two consumers long-polling at once', async () => {
      const { queue, peer } = await make();
      const both = Promise.all([queue.receive(1, 600), peer.receive(1, 600)]);
      await sleep(50);
      await queue.send('only-once');
      const [a, b] = await both;
      expect([...a, ...b].map((m) => m.body)).toEqual(['only-once']);
    });

    it('delivers every message exactly once across two consumers draining concurrently', async () => {
      const { queue, peer } = await make();
      const bodies = Array.from({ length: 30 }, (_, i) => `m${i}`);
      for (const body of bodies) await queue.send(body);
      const drain = async (consumer: Queue): Promise<string[]> => {
        const seen: string[] = [];
        for (;;) {
          const batch = await consumer.receive(3, 100);
          if (batch.length === 0) return seen;
          for (const message of batch) {
            expect(message.receiveCount).toBe(1);
            seen.push(message.body);
            await consumer.ack(message.receipt);
          }
        }
      };
      const [a, b] = await Promise.all([drain(queue), drain(peer)]);
      expect([...a, ...b].sort()).toEqual([...bodies].sort());
      expect(await queue.depth()).toBe(0);
    });

    it('resolves a pending long poll with no messages when closed', async () => {
      const { queue } = await make();
      const start = Date.now();
      const pending = queue.receive(1, 10_000);
      await sleep(50);
      await queue.close();
      expect(await pending).toEqual([]);
      expect(Date.now() - start).toBeLessThan(50 + PROMPT_MS);
    });

    it('rejects a receive of fewer than one message and a negative release delay', async () => {
      const { queue } = await make();
      await expect(queue.receive(0, 0)).rejects.toThrow(RangeError);
      await expect(queue.receive(1, -1)).rejects.toThrow(RangeError);
      await queue.send('job');
      const [message] = await queue.receive(1, 0);
      await expect(queue.release(message!.receipt, -5)).rejects.toThrow(RangeError);
    });
  });
}
