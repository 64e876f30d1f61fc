import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ClaimStore } from '../core/ports';

export interface DynamoDbClaimStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** Prepended to the partition key, so claims share the results table. Default `claim#`. */
  readonly prefix?: string;
  readonly now?: () => number;
}

/**
 * Claims as conditional writes: the put succeeds when no claim exists, it has lapsed, or the caller
 * already holds it. `leaseUntil` (epoch ms) is the lease; `expiresAt` (epoch s) lets the table's TTL
 * clean up, which DynamoDB does lazily, hence the explicit lease check in the condition.
 */
export class DynamoDbClaimStore implements ClaimStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(options: DynamoDbClaimStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.prefix = options.prefix ?? 'claim#';
    this.now = options.now ?? Date.now;
  }

  async claim(key: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: this.prefix + key,
            owner,
            leaseUntil: now + leaseMs,
            expiresAt: Math.ceil((now + leaseMs) / 1000) + 60,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now, ':owner': owner },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException')
        return false;
      throw err;
    }
  }

  async release(key: string, owner: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: this.prefix + key },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }
}
