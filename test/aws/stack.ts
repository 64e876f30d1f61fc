/**
 * One synthesized stack running on the emulators: provisioned from its template, its functions behind the
 * emulated Lambda service and REST API, with what a test needs to drive it and to check that nothing was
 * left behind (KV objects and keys, queue messages, non-terminal records, stored prompts, claims).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, PurgeQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Redis } from 'ioredis';
import { EMULATOR_CREDENTIALS, provision, REGION, type Provisioned, type Synthesized } from './deployment';
import { LambdaService, type CodeSource } from './lambda-service';
import { RestApi } from './rest-api';
import type { AwsServers } from './servers';

export interface Leftovers {
  readonly kvObjects: number;
  readonly kvKeys: number;
  readonly handoffMessages: number;
  readonly nonTerminalRecords: string[];
  /** Items that are not request records: stored prompts (`job#`), claims (`claim#`). */
  readonly otherItems: string[];
}

export class EmulatedStack {
  private readonly dynamo: DynamoDBClient;
  private readonly sqs: SQSClient;
  private readonly s3: S3Client;
  private readonly redis: Redis | null;

  private constructor(
    readonly synthesized: Synthesized,
    readonly provisioned: Provisioned,
    readonly lambda: LambdaService,
    readonly api: RestApi,
    servers: AwsServers,
  ) {
    const config = { region: REGION, credentials: EMULATOR_CREDENTIALS };
    this.dynamo = new DynamoDBClient({ ...config, endpoint: servers.dynamodbEndpoint });
    this.sqs = new SQSClient({ ...config, endpoint: servers.sqsS3Endpoint });
    this.s3 = new S3Client({ ...config, endpoint: servers.sqsS3Endpoint, forcePathStyle: true });
    const usesRedis = Object.values(synthesized.template.Resources).some(
      (r) => r.Type === 'AWS::ElastiCache::ServerlessCache',
    );
    this.redis = usesRedis
      ? new Redis({
          host: servers.redisHost,
          port: servers.redisTlsPort,
          tls: { ca: readFileSync(servers.caFile) },
          lazyConnect: true,
          maxRetriesPerRequest: 1,
        })
      : null;
  }

  static async start(synthesized: Synthesized, servers: AwsServers, source: CodeSource): Promise<EmulatedStack> {
    const provisioned = await provision(synthesized, servers, randomBytes(4).toString('hex'));
    const lambda = await LambdaService.start(synthesized, provisioned, servers, { source });
    return new EmulatedStack(synthesized, provisioned, lambda, new RestApi(synthesized.template, lambda), servers);
  }

  /** The logical id of the one queue whose id contains `part` (HandoffQueue, DeadLetterQueue). */
  queueUrl(part: string): string {
    const found = [...this.provisioned.queueUrls].filter(([id]) => id.includes(part));
    if (found.length !== 1) throw new Error(`expected one queue *${part}*, found ${found.length}`);
    return found[0]![1];
  }

  /** Every message in the dead-letter queue, read and removed. */
  async drainDeadLetters(): Promise<string[]> {
    const url = this.queueUrl('DeadLetterQueue');
    const bodies: string[] = [];
    for (;;) {
      const out = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (!out.Messages?.length) break;
      bodies.push(...out.Messages.map((m) => m.Body ?? ''));
      if (bodies.length > 1000) break;
    }
    await this.sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    return bodies;
  }

  async leftovers(): Promise<Leftovers> {
    const items = await this.dynamo.send(new ScanCommand({ TableName: this.provisioned.tableName }));
    const nonTerminalRecords: string[] = [];
    const otherItems: string[] = [];
    for (const item of items.Items ?? []) {
      const pk = item.pk?.S ?? '';
      if (/^(job|claim)#/.test(pk)) {
        otherItems.push(pk);
        continue;
      }
      if (pk.startsWith('cancel#')) continue;
      const record = JSON.parse(item.record?.S ?? '{}') as { state?: string };
      if (!['completed', 'failed', 'cancelled', 'rejected'].includes(record.state ?? ''))
        nonTerminalRecords.push(`${pk}:${record.state}`);
    }
    let kvObjects = 0;
    if (this.provisioned.bucketName) {
      const listed = await this.s3.send(new ListObjectsV2Command({ Bucket: this.provisioned.bucketName }));
      kvObjects = listed.KeyCount ?? listed.Contents?.length ?? 0;
    }
    let kvKeys = 0;
    if (this.redis) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', 'disagg:kv:*', 'COUNT', 1000);
        cursor = next;
        kvKeys += keys.length;
      } while (cursor !== '0');
    }
    const attributes =
      (
        await this.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: this.queueUrl('HandoffQueue'),
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        )
      ).Attributes ?? {};
    const handoffMessages =
      Number(attributes.ApproximateNumberOfMessages ?? 0) +
      Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
    return { kvObjects, kvKeys, handoffMessages, nonTerminalRecords, otherItems };
  }

  /** Every log line the functions wrote, in one string. */
  logs(): string {
    return [...this.lambda.functions.values()].flatMap((f) => f.logs).join('\n');
  }

  async stop(): Promise<void> {
    await this.lambda.stop();
    this.redis?.disconnect();
    for (const client of [this.dynamo, this.sqs, this.s3]) client.destroy();
    this.synthesized.dispose();
  }
}
