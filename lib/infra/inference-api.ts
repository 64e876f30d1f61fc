/**
 * The OpenAI-compatible front door: a REST API with the embedded server's routes, an API key and usage
 * plan, request-body validation, access logs and tracing. On AWS the two POST routes stream (API Gateway
 * response streaming into the function's `streamHandler`); elsewhere SSE is buffered into one response.
 *
 * The key is taken as `Authorization: Bearer <key>` (what OpenAI clients send) or `x-api-key`, like the embedded
 * server: a request authorizer reads it and API Gateway checks it against the usage plan (API key source
 * AUTHORIZER). With `corsOrigins`, API Gateway answers preflights without a key and the functions add the allow
 * headers; API Gateway's own refusals (no key, a wrong key, throttling) answer in the API's error format.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE_SECONDS } from '../core/api/cors';
import type { CloudWatchRoleChoice, FunctionSize } from './config';
import { DisaggFunction, LAMBDA_ENTRIES, type FunctionNetwork } from './disagg-function';

/** Every route, as the embedded HTTP server serves them. */
export const API_ROUTES = [
  { method: 'POST', path: '/v1/chat/completions' },
  { method: 'POST', path: '/v1/completions' },
  { method: 'POST', path: '/v1/responses' },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/{id}' },
  { method: 'GET', path: '/v1/requests/{id}' },
  { method: 'DELETE', path: '/v1/requests/{id}' },
  { method: 'GET', path: '/healthz' },
] as const;

/** A health check must answer load balancers and uptime probes that hold no key. */
const OPEN_ROUTES: ReadonlySet<string> = new Set(['GET /healthz']);

/** REST API response streaming runs for at most 15 minutes (API Gateway developer guide, response streaming). */
export const MAX_STREAM_SECONDS = 900;

/** The same bounds the handler's request parser applies (lib/core/api/limits.ts), checked at the gateway first. */
const MAX_MESSAGES = 2048;
const MAX_MODEL_CHARS = 256;

export interface InferenceApiProps {
  readonly size: FunctionSize;
  /** The streaming function's timeout, and its integration's: how long one SSE response may run. */
  readonly streamTimeoutSeconds: number;
  readonly environment: Readonly<Record<string, string>>;
  /** True: the POST routes use response streaming (AWS). False: buffered SSE (LocalStack). */
  readonly streaming: boolean;
  /**
   * `create`: set the region's API Gateway CloudWatch role (one setting per account and region), retained on
   * destroy; `existing`: leave the setting as it is (it must already name a role, or logging fails to deploy).
   */
  readonly cloudWatchRole: CloudWatchRoleChoice;
  readonly apiKeyRequired: boolean;
  /** Origins browser pages may call the API from (`*`: any); empty: no CORS. */
  readonly corsOrigins?: readonly string[];
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly network?: FunctionNetwork;
  readonly tokenizerFamily?: string;
}

export class InferenceApi extends Construct {
  readonly api: apigateway.RestApi;
  /** Serves every buffered route (all of them when streaming is off); handler `handler`. */
  readonly function: DisaggFunction['function'];
  /** Serves the POST routes when streaming is on; handler `streamHandler`. */
  readonly streamFunction?: DisaggFunction['function'];
  readonly accessLogGroup: logs.LogGroup;
  readonly apiKey?: apigateway.IApiKey;
  /** Reads the key from `Authorization: Bearer` or `x-api-key` for the usage plan, when a key is required. */
  readonly authorizer?: apigateway.RequestAuthorizer;
  readonly authorizerFunction?: DisaggFunction['function'];
  readonly usagePlan?: apigateway.UsagePlan;
  readonly requestValidator: apigateway.RequestValidator;
  /** The account-level logging setting, when this stack creates it. */
  readonly cloudWatchAccount?: apigateway.CfnAccount;

  constructor(scope: Construct, id: string, props: InferenceApiProps) {
    super(scope, id);
    const functionProps = {
      entry: LAMBDA_ENTRIES.api,
      size: props.size,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      network: props.network,
      tokenizerFamily: props.tokenizerFamily,
    };
    this.function = new DisaggFunction(this, 'ApiHandler', {
      ...functionProps,
      description: 'Disagg API: OpenAI-compatible routes, admission, async prefill invoke, results',
      // API Gateway REST caps payloads at 10 MB and Lambda's synchronous invoke at 6 MB; the handler's token limits are the real bound.
      environment: props.environment,
    }).function;
    if (props.streaming) {
      this.streamFunction = new DisaggFunction(this, 'ApiStreamHandler', {
        ...functionProps,
        // Not the buffered function's 28 s: a stream runs until its request ends (the 5-minute deadline).
        size: { memoryMb: props.size.memoryMb, timeoutSeconds: props.streamTimeoutSeconds },
        handler: 'streamHandler',
        description: 'Disagg API, streaming routes: SSE through API Gateway response streaming',
        environment: props.environment,
      }).function;
    }

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });
    const corsOrigins = props.corsOrigins ?? [];
    this.api = new apigateway.RestApi(this, 'RestApi', {
      description: 'Disagg: disaggregated LLM inference (OpenAI-compatible)',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // The key comes from the authorizer (Bearer or x-api-key), not only from the x-api-key header.
      ...(props.apiKeyRequired ? { apiKeySourceType: apigateway.ApiKeySourceType.AUTHORIZER } : {}),
      // An OPTIONS method (MOCK integration, no key) on every resource answers the browser's preflight.
      ...(corsOrigins.length > 0
        ? {
            defaultCorsPreflightOptions: {
              allowOrigins: corsOrigins.includes('*') ? apigateway.Cors.ALL_ORIGINS : [...corsOrigins],
              allowMethods: [...CORS_ALLOW_METHODS],
              allowHeaders: [...CORS_ALLOW_HEADERS],
              exposeHeaders: [...CORS_EXPOSE_HEADERS],
              maxAge: Duration.seconds(CORS_MAX_AGE_SECONDS),
            },
          }
        : {}),
      // Access and execution logs need the account-level CloudWatch role setting (one per account and region).
      // Kept on destroy whatever removalPolicy says: deleting the role the setting names would break logging for
      // every API in the region, not just this one.
      cloudWatchRole: props.cloudWatchRole === 'create',
      ...(props.cloudWatchRole === 'create' ? { cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : {}),
      deployOptions: {
        // Not "v1": the routes already start with /v1, so an OpenAI client's base URL is <stage URL>v1.
        stageName: 'api',
        tracingEnabled: true,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
        // Errors only, and never request bodies: prompts are user data.
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
      },
    });
    // RestApi keeps its CfnAccount protected; it is the child named Account.
    this.cloudWatchAccount = this.api.node.tryFindChild('Account') as apigateway.CfnAccount | undefined;
    if (this.cloudWatchAccount) {
      // A brand-new role can take seconds to become usable by API Gateway ("The role ARN does not have required
      // permissions"); setting the account after the functions exist gives IAM that time without a custom resource.
      for (const fn of this.functions) this.cloudWatchAccount.node.addDependency(fn);
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "The account-level role API Gateway writes access and execution logs with; API Gateway creates its own log groups, so AWS's managed policy is the documented one.",
      });
    }
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason:
        'Sandbox reference: the API key, usage plan and stage throttling bound abuse; a WAF web ACL is a monthly fixed cost a production deployment attaches.',
    });
    for (const rule of ['AwsSolutions-APIG4', 'AwsSolutions-COG4']) {
      Validations.of(this.api).acknowledge({
        id: rule,
        reason:
          'The API has no end-user identity (OpenAI-compatible clients send an API key); API keys and the usage plan gate it. Production fronts it with an IAM or Cognito authorizer.',
      });
    }

    this.requestValidator = this.api.addRequestValidator('BodyValidator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    if (props.apiKeyRequired) {
      this.authorizerFunction = new DisaggFunction(this, 'KeyAuthorizer', {
        entry: LAMBDA_ENTRIES.authorizer,
        // It parses two headers: the smallest size answers in milliseconds.
        size: { memoryMb: 256, timeoutSeconds: 5 },
        description: 'Disagg API key reader: Authorization Bearer or x-api-key, for the usage plan',
        environment: {},
        logRetentionDays: props.logRetentionDays,
        removalPolicy: props.removalPolicy,
      }).function;
      this.authorizer = new apigateway.RequestAuthorizer(this, 'KeyReader', {
        handler: this.authorizerFunction,
        // Either header may carry the key, so there is no one identity source to cache on; the authorizer
        // only reads the key, so an uncached call costs one small invocation, not a lookup.
        identitySources: [],
        resultsCacheTtl: Duration.seconds(0),
      });
    }
    gatewayResponses(this.api, corsOrigins);

    const models = requestModels(this.api);
    const buffered = new apigateway.LambdaIntegration(this.function);
    const postIntegration = this.streamFunction
      ? new apigateway.LambdaIntegration(this.streamFunction, {
          // The installed L2 supports streaming: it switches the URI to /response-streaming-invocations.
          responseTransferMode: apigateway.ResponseTransferMode.STREAM,
          // Streaming integrations may run up to 15 minutes, past the buffered 29 s.
          timeout: Duration.seconds(Math.min(props.streamTimeoutSeconds, MAX_STREAM_SECONDS)),
        })
      : buffered;

    for (const route of API_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      const model = route.method === 'POST' ? models[route.path] : undefined;
      const keyed = props.apiKeyRequired && !OPEN_ROUTES.has(`${route.method} ${route.path}`);
      resource.addMethod(route.method, route.method === 'POST' ? postIntegration : buffered, {
        apiKeyRequired: keyed,
        ...(keyed && this.authorizer ? { authorizer: this.authorizer } : {}),
        requestValidator: this.requestValidator,
        requestModels: model ? { 'application/json': model } : undefined,
        requestParameters: route.path.includes('{id}') ? { 'method.request.path.id': true } : undefined,
      });
    }

    if (props.apiKeyRequired) {
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: 'Disagg: per-key throttling',
        throttle: { rateLimit: props.throttle.rateLimit, burstLimit: props.throttle.burstLimit },
        apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
      });
      this.apiKey = this.api.addApiKey('ApiKey', { description: 'Disagg API key' });
      this.apiKey.applyRemovalPolicy(props.removalPolicy);
      this.usagePlan.addApiKey(this.apiKey);
    }
  }

  /** Every function serving the API, so the stack can grant them the same data access. */
  get functions(): DisaggFunction['function'][] {
    return this.streamFunction ? [this.function, this.streamFunction] : [this.function];
  }

  /** The principals of the API functions. */
  get grantables(): iam.IGrantable[] {
    return this.functions;
  }
}

/** API Gateway's own message for a refusal, as a quoted JSON string. */
const MESSAGE_STRING = '$context.error.messageString';

/** API Gateway's own refusals, by gateway response type: status, error type and code, and the message. */
const GATEWAY_ERRORS: readonly {
  readonly type: apigateway.ResponseType;
  readonly status: string;
  readonly errorType: string;
  readonly code: string;
  readonly message: string;
}[] = [
  {
    type: apigateway.ResponseType.UNAUTHORIZED,
    status: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
  },
  {
    // A key the usage plan does not hold: 401 as the embedded server answers, not API Gateway's 403.
    type: apigateway.ResponseType.INVALID_API_KEY,
    status: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'wrong API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
  },
  {
    type: apigateway.ResponseType.ACCESS_DENIED,
    status: '403',
    errorType: 'permission_error',
    code: 'access_denied',
    message: 'this key may not call this route',
  },
  {
    type: apigateway.ResponseType.THROTTLED,
    status: '429',
    errorType: 'rate_limit_error',
    code: 'rate_limited',
    message: "this key's request rate is over the usage plan's limit; retry shortly",
  },
  {
    type: apigateway.ResponseType.QUOTA_EXCEEDED,
    status: '429',
    errorType: 'rate_limit_error',
    code: 'quota_exceeded',
    message: "this key's usage plan quota is used up",
  },
  {
    type: apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    status: '404',
    errorType: 'invalid_request_error',
    code: 'route_not_found',
    message: 'no such route; see GET /v1/models and the README for the routes',
  },
  {
    type: apigateway.ResponseType.BAD_REQUEST_BODY,
    status: '400',
    errorType: 'invalid_request_error',
    code: 'invalid_body',
    message: '$context.error.validationErrorString',
  },
  {
    type: apigateway.ResponseType.DEFAULT_4XX,
    status: '',
    errorType: 'invalid_request_error',
    code: 'gateway_error',
    message: MESSAGE_STRING,
  },
  {
    type: apigateway.ResponseType.DEFAULT_5XX,
    status: '',
    errorType: 'server_error',
    code: 'gateway_error',
    message: MESSAGE_STRING,
  },
];

/**
 * API Gateway's own answers in the API's error format (`{"error": {message, type, param, code}}`), with the
 * request id, and with the CORS allow header so a browser page can read them (a 401 must reach the page for it
 * to ask for a key). With several allowed origins the refusal names the caller's origin: it carries no data.
 */
function gatewayResponses(api: apigateway.RestApi, corsOrigins: readonly string[]): void {
  const allowOrigin =
    corsOrigins.length === 0
      ? undefined
      : corsOrigins.includes('*')
        ? "'*'"
        : corsOrigins.length === 1
          ? `'${corsOrigins[0]}'`
          : 'method.request.header.origin';
  for (const e of GATEWAY_ERRORS) {
    // API Gateway's `messageString` is a JSON string already (quoted and escaped); the rest are plain text.
    const message =
      e.message === MESSAGE_STRING
        ? MESSAGE_STRING
        : e.message.startsWith('$context')
          ? `"${e.message}"`
          : JSON.stringify(e.message);
    api.addGatewayResponse(`Gateway${e.type.responseType}`, {
      type: e.type,
      ...(e.status ? { statusCode: e.status } : {}),
      responseHeaders: {
        'x-request-id': 'context.requestId',
        ...(allowOrigin ? { 'Access-Control-Allow-Origin': allowOrigin } : {}),
        ...(allowOrigin ? { 'Access-Control-Expose-Headers': `'${CORS_EXPOSE_HEADERS.join(',')}'` } : {}),
      },
      templates: {
        'application/json': `{"error":{"message":${message},"type":"${e.errorType}","param":null,"code":"${e.code}"}}`,
      },
    });
  }
}

/** JSON-schema models for the POST bodies: the required fields, checked before the function runs. */
function requestModels(api: apigateway.RestApi): Record<string, apigateway.Model> {
  const model = { type: apigateway.JsonSchemaType.STRING, minLength: 1, maxLength: MAX_MODEL_CHARS };
  const chat = api.addModel('ChatCompletionRequest', {
    contentType: 'application/json',
    modelName: 'ChatCompletionRequest',
    schema: {
      schema: apigateway.JsonSchemaVersion.DRAFT4,
      title: 'ChatCompletionRequest',
      type: apigateway.JsonSchemaType.OBJECT,
      required: ['model', 'messages'],
      properties: {
        model,
        messages: {
          type: apigateway.JsonSchemaType.ARRAY,
          minItems: 1,
          maxItems: MAX_MESSAGES,
          items: { type: apigateway.JsonSchemaType.OBJECT, required: ['role'] },
        },
      },
    },
  });
  const completion = api.addModel('CompletionRequest', {
    contentType: 'application/json',
    modelName: 'CompletionRequest',
    schema: {
      schema: apigateway.JsonSchemaVersion.DRAFT4,
      title: 'CompletionRequest',
      type: apigateway.JsonSchemaType.OBJECT,
      required: ['model', 'prompt'],
      properties: {
        model,
        // A string, or an array holding one string, as the handler's parser accepts.
        prompt: { type: [apigateway.JsonSchemaType.STRING, apigateway.JsonSchemaType.ARRAY], maxItems: 1 },
      },
    },
  });
  return { '/v1/chat/completions': chat, '/v1/completions': completion };
}
