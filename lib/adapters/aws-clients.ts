/**
 * SDK client configuration from the environment, shared by every AWS adapter.
 * Callers build each client once per process (module scope), so Lambda reuses connections across invocations.
 *
 * Endpoints follow the SDKs' documented environment variables: `AWS_ENDPOINT_URL_<SERVICE>` (for example
 * `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_DYNAMODB`) wins over the global `AWS_ENDPOINT_URL`, so each service
 * can sit on its own port (LocalStack uses one, the emulated-AWS tests use several), and
 * `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns every override off.
 */

export interface AwsClientConfig {
  readonly region: string;
  /** Set only when overridden (LocalStack, emulators); otherwise the SDK resolves the regional endpoint. */
  readonly endpoint?: string;
}

export interface S3ClientConfigFromEnv extends AwsClientConfig {
  readonly forcePathStyle?: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The services the adapters call, by the suffix of their endpoint variable (the SDK's service id, upper snake case). */
export const AWS_SERVICE_ENDPOINT_IDS = {
  sqs: 'SQS',
  s3: 'S3',
  dynamodb: 'DYNAMODB',
  lambda: 'LAMBDA',
  bedrockRuntime: 'BEDROCK_RUNTIME',
} as const;

export type AwsService = keyof typeof AWS_SERVICE_ENDPOINT_IDS;

const DEFAULT_REGION = 'us-east-1';

/**
 * Region and optional endpoint override for a client of `service`: `AWS_ENDPOINT_URL_<SERVICE>`, else
 * `AWS_ENDPOINT_URL`. Without a service only the global variable applies.
 */
export function awsClientConfig(env: Env = process.env, service?: AwsService): AwsClientConfig {
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? DEFAULT_REGION;
  const endpoint = endpointOverride(env, service);
  return endpoint === undefined ? { region } : { region, endpoint };
}

/** As {@link awsClientConfig} for S3, plus path-style addressing whenever an endpoint is overridden. */
export function s3ClientConfig(env: Env = process.env): S3ClientConfigFromEnv {
  const base = awsClientConfig(env, 's3');
  // Emulators (LocalStack, fauxqs) and bare IP endpoints cannot resolve virtual-hosted bucket subdomains.
  return base.endpoint === undefined ? base : { ...base, forcePathStyle: true };
}

/** The endpoint a client of `service` must use, or undefined for the SDK's regional default. */
export function endpointOverride(env: Env, service?: AwsService): string | undefined {
  if (nonEmpty(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)?.toLowerCase() === 'true') return undefined;
  const specific = service ? nonEmpty(env[`AWS_ENDPOINT_URL_${AWS_SERVICE_ENDPOINT_IDS[service]}`]) : undefined;
  return specific ?? nonEmpty(env.AWS_ENDPOINT_URL);
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
