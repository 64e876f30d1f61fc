/**
 * A synthesized stack made real against the AWS-protocol servers: the template is read for its resources
 * (the results table, the queues and their redrive, the KV bucket, the cache endpoint, the functions with
 * their environment, timeouts, handlers, event source mappings and asynchronous invoke settings), the data
 * resources are created on dynalite and fauxqs with the template's properties, and every intrinsic in a
 * function's environment is resolved to the emulated resource's name, URL or address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { App } from 'aws-cdk-lib';
import { readConfig } from '../../lib/infra/config';
import { DisaggStack, stackName } from '../../lib/infra/stack';
import type { AwsServers } from './servers';

export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';
/** Lambda's own credentials variables: any value does for the emulators, none is ever real. */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'emulated', secretAccessKey: 'emulated' } as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, Json>;
  readonly Metadata?: Record<string, Json>;
}
export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

/** One function as the template defines it. */
export interface FunctionDefinition {
  readonly logicalId: string;
  readonly description: string;
  /** `index.handler` -> `handler`. */
  readonly exportName: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly reservedConcurrency: number | null;
  /** Unresolved, as in the template. */
  readonly environment: Record<string, Json>;
  /** The bundle in cdk.out (bundled synths only). */
  readonly bundle: string | null;
  /** The TypeScript entry the bundle was built from. */
  readonly source: string;
}

export interface Synthesized {
  readonly template: CfnTemplate;
  readonly functions: ReadonlyMap<string, FunctionDefinition>;
  /** Removes the temporary cloud assembly. */
  dispose(): void;
}

const ROOT = resolve(import.meta.dirname, '../..');
const SOURCES: Record<string, string> = {
  'Disagg API': 'lambdas/api.ts',
  'Disagg prefill': 'lambdas/prefill.ts',
  'Disagg decode': 'lambdas/decode.ts',
};

/**
 * `cdk synth` of the app in cdk.json into a temporary folder, bundles included: the template and the bundles
 * a deploy would upload. Context values go through `-c`, as a user passes them.
 */
export function cdkSynth(context: Record<string, string>): Synthesized {
  const out = mkdtempSync(join(tmpdir(), 'disagg-aws-tier-cdk-'));
  const args = ['cdk', 'synth', '--quiet', '--no-notices', '-o', out];
  for (const [key, value] of Object.entries(context)) args.push('-c', `${key}=${value}`);
  const run = spawnSync('npx', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  if (run.status !== 0) throw new Error(`cdk synth failed (${run.status}):\n${run.stderr}\n${run.stdout}`);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string } }>;
  };
  const stack = Object.values(manifest.artifacts).find((a) => a.type === 'aws:cloudformation:stack');
  const template = JSON.parse(readFileSync(join(out, stack!.properties!.templateFile!), 'utf8')) as CfnTemplate;
  return {
    template,
    functions: functionsOf(template, out),
    dispose: () => rmSync(out, { recursive: true, force: true }),
  };
}

/** The same app synthesized in this process without bundling (the sources run instead of bundles). */
export function synthWithoutBundles(context: Record<string, string>): Synthesized {
  const out = mkdtempSync(join(tmpdir(), 'disagg-aws-tier-cdk-'));
  const app = new App({ outdir: out, context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const config = readConfig((key) => app.node.tryGetContext(key));
  const stack = new DisaggStack(app, stackName(config), { config });
  const template = app.synth().getStackByName(stack.stackName).template as CfnTemplate;
  return {
    template,
    functions: functionsOf(template, null),
    dispose: () => rmSync(out, { recursive: true, force: true }),
  };
}

function functionsOf(template: CfnTemplate, assembly: string | null): Map<string, FunctionDefinition> {
  const out = new Map<string, FunctionDefinition>();
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const p = resource.Properties ?? {};
    const description = String(p.Description ?? '');
    const entry = Object.entries(SOURCES).find(([prefix]) => description.startsWith(prefix));
    if (!entry) continue; // CDK's own custom-resource providers (bucket auto-delete) are not ours to run.
    const assetPath = resource.Metadata?.['aws:asset:path'];
    const bundle = assembly && typeof assetPath === 'string' ? join(assembly, assetPath, 'index.mjs') : null;
    if (bundle && !existsSync(bundle)) throw new Error(`${logicalId}: no bundle at ${bundle}`);
    out.set(logicalId, {
      logicalId,
      description,
      exportName: String(p.Handler).replace(/^index\./, ''),
      timeoutSeconds: Number(p.Timeout ?? 3),
      memoryMb: Number(p.MemorySize ?? 128),
      reservedConcurrency: typeof p.ReservedConcurrentExecutions === 'number' ? p.ReservedConcurrentExecutions : null,
      environment: ((p.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {}) as Record<
        string,
        Json
      >,
      bundle,
      source: join(ROOT, entry[1]),
    });
  }
  return out;
}

/** The emulated physical resources, by logical id. */
export interface Provisioned {
  readonly tableName: string;
  readonly queueUrls: ReadonlyMap<string, string>;
  readonly queueArns: ReadonlyMap<string, string>;
  readonly bucketName: string | null;
  /** Resolves an intrinsic (or plain value) of the template to what it is on the emulators. */
  resolve(value: Json): string;
  /** Logical id of a function from its ARN or name, as an environment variable or a destination holds it. */
  functionOf(arnOrName: string): string | null;
  /** Logical id of a queue from its ARN. */
  queueOfArn(arn: string): string | null;
}

/**
 * Creates the table, the queues (visibility timeout, retention, redrive with maxReceiveCount) and the KV
 * bucket on the emulators, each name suffixed with `run` so runs never share state.
 */
export async function provision(synthesized: Synthesized, servers: AwsServers, run: string): Promise<Provisioned> {
  const { template } = synthesized;
  const config = { region: REGION, credentials: EMULATOR_CREDENTIALS };
  const dynamo = new DynamoDBClient({ ...config, endpoint: servers.dynamodbEndpoint });
  const sqs = new SQSClient({ ...config, endpoint: servers.sqsS3Endpoint });
  const s3 = new S3Client({ ...config, endpoint: servers.sqsS3Endpoint, forcePathStyle: true });
  const name = (logicalId: string): string => `${logicalId.slice(0, 40)}-${run}`.toLowerCase();
  const byType = (type: string): [string, CfnResource][] =>
    Object.entries(template.Resources).filter(([, r]) => r.Type === type);

  const tables = byType('AWS::DynamoDB::Table');
  if (tables.length !== 1) throw new Error(`expected one table, found ${tables.length}`);
  const [tableId, table] = tables[0]!;
  const tableName = name(tableId);
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: table.Properties!.KeySchema as never,
      AttributeDefinitions: table.Properties!.AttributeDefinitions as never,
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );

  const queueUrls = new Map<string, string>();
  const queueArns = new Map<string, string>();
  const queues = byType('AWS::SQS::Queue');
  // Dead-letter queues first: a redrive policy names its target's ARN.
  const redriven = (r: CfnResource): boolean => r.Properties?.RedrivePolicy !== undefined;
  for (const [id, queue] of [...queues.filter(([, q]) => !redriven(q)), ...queues.filter(([, q]) => redriven(q))]) {
    const p = queue.Properties ?? {};
    const attributes: Record<string, string> = {};
    if (p.VisibilityTimeout !== undefined) attributes.VisibilityTimeout = String(p.VisibilityTimeout);
    if (p.MessageRetentionPeriod !== undefined) attributes.MessageRetentionPeriod = String(p.MessageRetentionPeriod);
    if (p.RedrivePolicy) {
      const policy = p.RedrivePolicy as { deadLetterTargetArn: Json; maxReceiveCount: number };
      const target = (policy.deadLetterTargetArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: queueArns.get(target),
        maxReceiveCount: policy.maxReceiveCount,
      });
    }
    const created = await sqs.send(new CreateQueueCommand({ QueueName: name(id), Attributes: attributes }));
    const arn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    queueUrls.set(id, created.QueueUrl!);
    queueArns.set(id, arn);
  }

  const buckets = byType('AWS::S3::Bucket');
  const bucketName = buckets.length === 1 ? name(buckets[0]![0]) : null;
  if (bucketName) await s3.send(new CreateBucketCommand({ Bucket: bucketName }));
  for (const client of [dynamo, sqs, s3]) client.destroy();

  const functionArn = (id: string): string => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`;
  const resolveValue = (value: Json): string => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (value === null || Array.isArray(value)) throw new Error(`cannot resolve ${JSON.stringify(value)}`);
    if ('Ref' in value) {
      const ref = String(value.Ref);
      const pseudo: Record<string, string> = {
        'AWS::Region': REGION,
        'AWS::AccountId': ACCOUNT,
        'AWS::Partition': 'aws',
        'AWS::URLSuffix': 'amazonaws.com',
      };
      if (pseudo[ref]) return pseudo[ref];
      if (ref === tableId) return tableName;
      if (queueUrls.has(ref)) return queueUrls.get(ref)!;
      if (bucketName && ref === buckets[0]![0]) return bucketName;
      if (template.Resources[ref]?.Type === 'AWS::Lambda::Function') return ref;
      throw new Error(`no emulated resource for Ref ${ref}`);
    }
    if ('Fn::GetAtt' in value) {
      const [id, attribute] = value['Fn::GetAtt'] as [string, string];
      const type = template.Resources[id]?.Type;
      if (type === 'AWS::SQS::Queue' && attribute === 'Arn') return queueArns.get(id)!;
      if (type === 'AWS::Lambda::Function' && attribute === 'Arn') return functionArn(id);
      if (type === 'AWS::DynamoDB::Table' && attribute === 'Arn')
        return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${tableName}`;
      // ElastiCache Serverless: the TLS Redis stands in for the cache's endpoint.
      if (type === 'AWS::ElastiCache::ServerlessCache' && attribute === 'Endpoint.Address') return servers.redisHost;
      if (type === 'AWS::ElastiCache::ServerlessCache' && attribute === 'Endpoint.Port')
        return String(servers.redisTlsPort);
      throw new Error(`no emulated attribute ${id}.${attribute} (${type})`);
    }
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'] as [string, Json[]];
      return parts.map(resolveValue).join(separator);
    }
    throw new Error(`unsupported intrinsic ${JSON.stringify(value)}`);
  };

  return {
    tableName,
    queueUrls,
    queueArns,
    bucketName,
    resolve: resolveValue,
    functionOf: (arnOrName) => {
      const id = arnOrName.replace(/^arn:aws:lambda:[^:]+:\d+:function:/, '').replace(/:\$LATEST$/, '');
      return synthesized.functions.has(id) ? id : null;
    },
    queueOfArn: (arn) => [...queueArns].find(([, a]) => a === arn)?.[0] ?? null,
  };
}
