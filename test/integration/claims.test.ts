import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDbClaimStore } from '../../lib/adapters/claims-dynamodb';
import { MemoryClaimStore } from '../../lib/adapters/claims-memory';
import { RedisClaimStore } from '../../lib/adapters/claims-redis';
import { createRedis } from '../../lib/adapters/redis-connection';
import type { ClaimStore } from '../../lib/core/ports';
import { testRedisPrefix } from '../redis-test-keys';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The claim semantics every store must have, specified once. */
function claimContract(name: string, make: () => ClaimStore): void {
  describe(`${name} claim store`, () => {
    it('gives a free claim to the first owner and refuses a second owner while it holds it', async () => {
      const claims = make();
      expect(await claims.claim('req-1', 'worker-a/1', 5_000)).toBe(true);
      expect(await claims.claim('req-1', 'worker-b/1', 5_000)).toBe(false);
    });

    it('lets the holder renew its claim', async () => {
      const claims = make();
      expect(await claims.claim('req-2', 'worker-a/1', 5_000)).toBe(true);
      expect(await claims.claim('req-2', 'worker-a/1', 5_000)).toBe(true);
    });

    it('lets another owner take a claim whose lease lapsed (a crashed worker)', async () => {
      const claims = make();
      expect(await claims.claim('req-3', 'worker-a/1', 150)).toBe(true);
      await sleep(250);
      expect(await claims.claim('req-3', 'worker-b/1', 5_000)).toBe(true);
      expect(await claims.claim('req-3', 'worker-a/1', 5_000)).toBe(false);
    });

    it('releases only for its holder', async () => {
      const claims = make();
      expect(await claims.claim('req-4', 'worker-a/1', 5_000)).toBe(true);
      await claims.release('req-4', 'worker-b/1');
      expect(await claims.claim('req-4', 'worker-b/1', 5_000)).toBe(false);
      await claims.release('req-4', 'worker-a/1');
      expect(await claims.claim('req-4', 'worker-b/1', 5_000)).toBe(true);
    });
  });
}

claimContract('memory', () => new MemoryClaimStore());

const redis = createRedis({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  connectionName: 'disagg-claims-test',
});
const redisPrefix = testRedisPrefix('claims');
afterAll(async () => {
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});
claimContract('Redis', () => new RedisClaimStore({ redis, prefix: redisPrefix }));

describe('DynamoDB claim store', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const store = new DynamoDbClaimStore({ client, tableName: 'results', now: () => 1_000_000 });

  it('claims with a conditional put: free, lapsed, or already ours', async () => {
    ddb.reset();
    ddb.on(PutCommand).resolves({});
    expect(await store.claim('req-1', 'w/1', 30_000)).toBe(true);
    const input = ddb.commandCalls(PutCommand)[0]!.args[0].input;
    expect(input.TableName).toBe('results');
    expect(input.Item).toMatchObject({ pk: 'claim#req-1', owner: 'w/1', leaseUntil: 1_030_000 });
    expect(input.ConditionExpression).toBe('attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner');
    expect(input.ExpressionAttributeValues).toEqual({ ':now': 1_000_000, ':owner': 'w/1' });
  });

  it('answers false when the condition fails (someone else holds it) and rethrows other errors', async () => {
    ddb.reset();
    ddb.on(PutCommand).rejectsOnce(new ConditionalCheckFailedException({ message: 'held', $metadata: {} }));
    expect(await store.claim('req-1', 'w/2', 30_000)).toBe(false);
    ddb.reset();
    ddb.on(PutCommand).rejects(new Error('throttled'));
    await expect(store.claim('req-1', 'w/2', 30_000)).rejects.toThrow('throttled');
  });

  it('releases with a delete conditioned on the owner, ignoring a claim that is no longer ours', async () => {
    ddb.reset();
    ddb.on(DeleteCommand).rejects(new ConditionalCheckFailedException({ message: 'not ours', $metadata: {} }));
    await expect(store.release('req-1', 'w/1')).resolves.toBeUndefined();
    const input = ddb.commandCalls(DeleteCommand)[0]!.args[0].input;
    expect(input.Key).toEqual({ pk: 'claim#req-1' });
    expect(input.ConditionExpression).toBe('#owner = :owner');
  });
});
