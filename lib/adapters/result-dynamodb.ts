import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ResultStore } from '../core/ports';

export interface DynamoDbResultStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** Wall clock in epoch ms, for expiry checks (injectable for tests). */
  readonly now?: () => number;
}

/** The stored item: partition key `pk`, the record as JSON, and the table's TTL attribute in epoch seconds. */
interface ResultItem {
  readonly pk: string;
  readonly record: string;
  readonly expiresAt: number;
}

/**
 * Request records in DynamoDB. The record is stored as a JSON string, not a map, so it round-trips
 * exactly as the API serves it (no undefined-value or class-instance marshalling rules to trip over).
 */
export class DynamoDbResultStore<T = unknown> implements ResultStore<T> {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly now: () => number;

  constructor(options: DynamoDbResultStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.now = options.now ?? Date.now;
  }

  async put(id: string, record: T, ttlMs: number): Promise<void> {
    const item: ResultItem = {
      pk: id,
      record: JSON.stringify(record),
      // Rounded up so the stored lease is never shorter than asked.
      expiresAt: Math.ceil((this.now() + Math.max(0, ttlMs)) / 1000),
    };
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: item }));
  }

  async get(id: string): Promise<T | null> {
    // Strongly consistent, so an API poll sees the decode stage's last write at once.
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: id }, ConsistentRead: true }),
    );
    const item = out.Item as Partial<ResultItem> | undefined;
    if (item === undefined || typeof item.record !== 'string') return null;
    // DynamoDB TTL deletes lazily (up to days late), so an expired item may still be returned.
    if (typeof item.expiresAt === 'number' && item.expiresAt * 1000 <= this.now()) return null;
    return JSON.parse(item.record) as T;
  }

  async delete(id: string): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: id } }));
  }
}
