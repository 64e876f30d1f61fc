import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KvStore } from '../core/ports';

export interface S3KvStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix for KV blobs; the bucket's lifecycle rule is scoped to it. */
  readonly prefix?: string;
  /** Wall clock in epoch ms, for lease checks (injectable for tests). */
  readonly now?: () => number;
}

/** User metadata key holding the lease end in epoch ms (sent as `x-amz-meta-expires-at`). */
export const LEASE_METADATA_KEY = 'expires-at';

/**
 * KV blobs in S3 (the LocalStack profile, where ElastiCache is not available).
 * The real TTL backstop for leaked blobs is the bucket lifecycle expiration rule set by CDK; the lease
 * stored in object metadata is only checked on read, because lifecycle rules run about once a day.
 */
export class S3KvStore implements KvStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(options: S3KvStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? 'kv/';
    this.now = options.now ?? Date.now;
  }

  async put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    const expiresAt = this.now() + Math.max(0, ttlMs);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: bytes,
        ContentType: 'application/octet-stream',
        Metadata: { [LEASE_METADATA_KEY]: String(expiresAt) },
        // The HTTP Expires header only tells caches when to stop serving it; S3 never deletes on it.
        Expires: new Date(expiresAt),
      }),
    );
  }

  async get(key: string): Promise<Uint8Array | null> {
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    const lease = Number(out.Metadata?.[LEASE_METADATA_KEY]);
    if (Number.isFinite(lease) && lease <= this.now()) {
      // Release the unread stream so the socket goes back to the pool.
      await out.Body?.transformToByteArray().catch(() => undefined);
      return null;
    }
    if (out.Body === undefined) return new Uint8Array(0);
    return out.Body.transformToByteArray();
  }

  async delete(key: string): Promise<void> {
    // DeleteObject succeeds on a missing key, so deleting twice is harmless.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /** Objects under the prefix, including expired ones the lifecycle rule has not swept yet (a leak check wants those). */
  async count(): Promise<number> {
    let total = 0;
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token }),
      );
      total += out.Contents?.length ?? out.KeyCount ?? 0;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    return total;
  }

  private objectKey(key: string): string {
    return `${this.prefix}${key}`;
  }
}

/**
 * GetObject on a missing key is NoSuchKey (404) when the caller may list the bucket, and AccessDenied
 * (403) otherwise; the CDK grant includes s3:ListBucket so a 403 here stays a real error.
 */
function isMissing(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}
