/**
 * The base every handler is deployed with: runtime, architecture, tracing, log retention and bundling are
 * decided once here, so each stage states only its entry, size and environment.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionSize } from './config';
import { DEPLOYMENT_ENV } from '../core/engine/deployment-env';
import {
  bundleDefine,
  copyAssetCommands,
  ESBUILD_TARGET,
  LAMBDA_ARCHITECTURE,
  LAMBDA_ENTRY_PATHS,
  MAIN_FIELDS,
  REQUIRE_SHIM,
  type BundleProfile,
  type FunctionKind,
} from './bundling-options';
import { METRIC_NAMESPACE, METRIC_SERVICE } from './metric-names';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The handler entry files, one per function kind. */
export const LAMBDA_ENTRIES = {
  api: join(projectRoot, LAMBDA_ENTRY_PATHS.api),
  prefill: join(projectRoot, LAMBDA_ENTRY_PATHS.prefill),
  decode: join(projectRoot, LAMBDA_ENTRY_PATHS.decode),
  /** The deployed API's key reader (lambdas/authorizer.ts): two headers, no vocabulary, no pipeline. */
  authorizer: join(projectRoot, 'lambdas/authorizer.ts'),
} as const;

/** The runtime and the esbuild target (ESBUILD_TARGET, bundling-options.ts) move together. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_22_X;

/** Where a function sits when it must reach the KV cache inside the VPC. */
export interface FunctionNetwork {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
}

export interface DisaggFunctionProps {
  /** One of LAMBDA_ENTRIES. */
  readonly entry: string;
  /** The exported handler name. */
  readonly handler?: string;
  readonly description: string;
  readonly size: FunctionSize;
  readonly environment: Readonly<Record<string, string>>;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  /** Omitted leaves the function on the account's unreserved pool. */
  readonly reservedConcurrency?: number;
  /** Omitted keeps the function outside any VPC. */
  readonly network?: FunctionNetwork;
  /** The one tokenizer family to bundle; omitted bundles them all. */
  readonly tokenizerFamily?: string;
}

/** Which function an entry file is. */
function functionKind(entry: string): FunctionKind {
  const kind = (Object.keys(LAMBDA_ENTRIES) as FunctionKind[]).find((k) => LAMBDA_ENTRIES[k] === entry);
  if (kind === undefined)
    throw new Error(`${entry} is not one of the handler entries (${Object.values(LAMBDA_ENTRIES).join(', ')})`);
  return kind;
}

export class DisaggFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: DisaggFunctionProps) {
    super(scope, id);
    // The bundle carries what this function of this deployment loads, and nothing else (bundling-options.ts).
    const profile: BundleProfile = {
      kind: functionKind(props.entry),
      architecture: LAMBDA_ARCHITECTURE,
      ...(props.tokenizerFamily ? { tokenizerFamily: props.tokenizerFamily } : {}),
      ...(props.environment[DEPLOYMENT_ENV.kvStore] ? { kvStore: props.environment[DEPLOYMENT_ENV.kvStore] } : {}),
      ...(props.environment[DEPLOYMENT_ENV.backend] ? { backend: props.environment[DEPLOYMENT_ENV.backend] } : {}),
    };
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: props.handler ?? 'handler',
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: LAMBDA_ARCHITECTURE === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      memorySize: props.size.memoryMb,
      timeout: Duration.seconds(props.size.timeoutSeconds),
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      reservedConcurrentExecutions: props.reservedConcurrency,
      vpc: props.network?.vpc,
      vpcSubnets: props.network?.subnets,
      securityGroups: props.network ? [props.network.securityGroup] : undefined,
      projectRoot,
      depsLockFilePath: fileURLToPath(new URL('../../package-lock.json', import.meta.url)),
      // Only meaningful for the v2 SDK, which nothing here uses.
      awsSdkConnectionReuse: false,
      bundling: {
        format: OutputFormat.ESM,
        target: ESBUILD_TARGET,
        minify: true,
        // External: the map ships beside index.mjs for mapping a logged stack trace afterwards. Not read at init
        // (no --enable-source-maps): Node would parse it at every cold start.
        sourceMap: true,
        // Stack traces need line mappings, not a second copy of every dependency's source in the zip.
        sourcesContent: false,
        mainFields: [...MAIN_FIELDS],
        banner: REQUIRE_SHIM,
        define: bundleDefine(profile),
        // The served family's vocabulary beside index.mjs in the API function; the native CRC-32C in prefill and decode.
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir, outputDir) => copyAssetCommands(profile, inputDir, outputDir),
        },
        // The AWS SDK v3 and Powertools are bundled, not layered: LocalStack's free tier does not apply layers.
        externalModules: [],
        bundleAwsSDK: true,
        forceDockerBundling: false,
      },
      environment: {
        POWERTOOLS_SERVICE_NAME: METRIC_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        ...props.environment,
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: `Pinned to ${FUNCTION_RUNTIME.name} with a matching esbuild target, the runtime the project's Node >= 20 engine, LocalStack's Lambda emulator and AWS all run; moving to a newer runtime is a deliberate change, not drift.`,
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        'The AWS-managed basic execution policy only allows creating log streams and writing log events; AWS maintains it.',
    });
    if (props.network) {
      Validations.of(this.function).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'The AWS-managed VPC access policy is what Lambda needs to attach its network interfaces to the isolated subnets; network-interface actions cannot be scoped to resources.',
      });
    }
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray tracing (PutTraceSegments, PutTelemetryRecords) only accepts Resource "*"; CDK adds exactly those two actions for active tracing.',
    });
  }
}
