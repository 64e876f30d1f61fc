/**
 * The handoff between prefill and decode: a queue of small descriptors (with a dead-letter queue for
 * poison ones) and the KV store the descriptors point into (claim-check). The KV store is ElastiCache
 * Serverless (Valkey) in an isolated VPC, or an S3 bucket where ElastiCache is unavailable (LocalStack).
 */
import { createHash } from 'node:crypto';
import { Duration, Fn, Names, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEPLOYMENT_ENV } from '../core/engine/deployment-env';
import type { KvStoreKind } from './config';
import { KvNetwork } from './kv-network';
import type { KvCacheLimits } from './sizing';

/**
 * Added to the decode timeout for the queue's visibility timeout. AWS suggests six times the function timeout
 * for an SQS event source, so a throttled batch is not delivered twice; here a descriptor's request dies with
 * its 5-minute deadline and KV lease, so a delivery whose decode crashed must come back within minutes, not
 * after 6 x 120 s. Throttling cannot redeliver a batch early because the event source's maximum concurrency
 * stays within any reserved concurrency, and a failed descriptor comes back after a short backoff the decode
 * function sets itself (ChangeMessageVisibility).
 */
export const VISIBILITY_MARGIN = Duration.seconds(30);

/** Dead letters stay for SQS's maximum, so a poison descriptor can be inspected and redriven. */
const DEAD_LETTER_RETENTION = Duration.days(14);

export interface KvHandoffProps {
  readonly kvStore: KvStoreKind;
  /**
   * Receives before a descriptor is dead-lettered. The decode function does it on the last one (a redacted copy,
   * ids and sizes only); the queue's own redrive, one receive later, is the backstop for a crash on that receive.
   */
  readonly maxReceiveCount: number;
  /** The decode function's timeout; the queue's visibility timeout is derived from it. */
  readonly decodeTimeout: Duration;
  readonly removalPolicy: RemovalPolicy;
  /** Adds the bedrock-runtime VPC endpoint (only matters with kvStore=elasticache). */
  readonly bedrock: boolean;
  /** Zones for the cache's subnets; empty lets CDK pick the region's first two. */
  readonly availabilityZones: readonly string[];
  /** ECPU and storage caps for the cache (sizing.ts). */
  readonly cacheLimits: KvCacheLimits;
}

export class KvHandoff extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly kvStore: KvStoreKind;
  /** Present with kvStore=elasticache: the VPC the cache and the functions share. */
  readonly network?: KvNetwork;
  readonly cache?: elasticache.CfnServerlessCache;
  /** Present with kvStore=s3. */
  readonly bucket?: s3.Bucket;
  /** The DEPLOYMENT_ENV entries that tell a handler where the KV store is. */
  readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: KvHandoffProps) {
    super(scope, id);
    this.kvStore = props.kvStore;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'HandoffQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: props.decodeTimeout.plus(VISIBILITY_MARGIN),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount + 1 },
      removalPolicy: props.removalPolicy,
    });

    if (props.kvStore === 'elasticache') {
      this.network = new KvNetwork(this, 'Network', {
        bedrock: props.bedrock,
        availabilityZones: props.availabilityZones,
      });
      const engine = 'valkey';
      const subnets = this.network.vpc.isolatedSubnets;
      this.cache = new elasticache.CfnServerlessCache(this, 'Cache', {
        engine,
        majorEngineVersion: '8',
        serverlessCacheName: this.cacheName({
          engine,
          subnets: subnets.map((subnet) => [subnet.availabilityZone, subnet.ipv4CidrBlock]),
        }),
        description: 'Disagg KV blobs (claim-check handoff between prefill and decode)',
        subnetIds: subnets.map((subnet) => subnet.subnetId),
        securityGroupIds: [this.network.cacheSecurityGroup.securityGroupId],
        // Derived from the configured request rate and the largest KV blob (sizing.ts): the caps bound the bill
        // without throttling a load the API admits. Usage is billed, not the caps.
        cacheUsageLimits: {
          dataStorage: { maximum: props.cacheLimits.dataStorageGb, unit: 'GB' },
          ecpuPerSecond: { maximum: props.cacheLimits.ecpuPerSecond },
        },
        // Blobs are transient; a snapshot would only cost storage.
        snapshotRetentionLimit: 0,
      });
      this.cache.applyRemovalPolicy(props.removalPolicy);
      // Serverless ElastiCache always requires TLS, hence rediss://.
      const redisUrl = Fn.join('', ['rediss://', this.cache.attrEndpointAddress, ':', this.cache.attrEndpointPort]);
      this.environment = {
        [DEPLOYMENT_ENV.kvStore]: 'elasticache',
        [DEPLOYMENT_ENV.redisUrl]: redisUrl,
        [DEPLOYMENT_ENV.kvMaxBlobBytes]: String(props.cacheLimits.maxBlobBytes),
      };
    } else {
      const destroy = props.removalPolicy === RemovalPolicy.DESTROY;
      this.bucket = new s3.Bucket(this, 'KvBucket', {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        encryption: s3.BucketEncryption.S3_MANAGED,
        // The bucket holds only KV blobs, so the rule covers it all: the backstop for blobs nobody consumed.
        lifecycleRules: [
          {
            id: 'expire-kv-blobs',
            expiration: Duration.days(1),
            abortIncompleteMultipartUploadAfter: Duration.days(1),
          },
        ],
        removalPolicy: props.removalPolicy,
        autoDeleteObjects: destroy,
      });
      Validations.of(this.bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          'Holds only transient KV blobs that expire within a day; server access logs would need a second bucket whose logs outgrow the data. CloudTrail data events are the production option.',
      });
      this.environment = { [DEPLOYMENT_ENV.kvStore]: 's3', [DEPLOYMENT_ENV.kvBucket]: this.bucket.bucketName };
    }
  }

  /**
   * 40 characters, lowercase, unique per stack (the service's naming rules), and different whenever a property
   * that replaces the cache changes (engine, subnets): CloudFormation creates the replacement before deleting
   * the old cache, and two caches cannot share a name.
   */
  private cacheName(replacing: Record<string, unknown>): string {
    const digest = createHash('sha256')
      .update(JSON.stringify(Stack.of(this).resolve(replacing)))
      .digest('hex')
      .slice(0, 8);
    return `${Names.uniqueResourceName(this, { maxLength: 31, separator: '-' })}-${digest}`.toLowerCase();
  }

  /** Read, write and delete KV blobs: exactly what the KV adapters call. */
  grantKvAccess(grantee: iam.IGrantable): void {
    if (this.bucket) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          resources: [this.bucket.arnForObjects('*')],
        }),
      );
      // Without ListBucket a missing blob reads as AccessDenied instead of NoSuchKey, which the KV failure policy needs.
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
      );
    }
    // ElastiCache Serverless without IAM auth is reached over the network only: the security group is the grant.
  }

  /** The S3 object-ARN wildcard a nag acknowledgement on a grantee must name. */
  get kvObjectWildcardFinding(): string | null {
    if (!this.bucket) return null;
    const logicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket);
    return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/*]`;
  }
}
