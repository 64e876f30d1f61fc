/** The S3 KV store, imported by lambdas/wiring.ts only where the deployment uses it. */
import { S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../lib/adapters/aws-clients';
import { S3KvStore } from '../lib/adapters/kv-s3';
import type { KvStore } from '../lib/core/ports';

export function s3KvStore(
  env: Readonly<Record<string, string | undefined>>,
  bucket: string,
  client: S3Client | undefined,
): { store: KvStore; client: S3Client } {
  const s3 = client ?? new S3Client(s3ClientConfig(env));
  return { store: new S3KvStore({ client: s3, bucket }), client: s3 };
}
