import { describe, expect, it } from 'vitest';
import { checkTemplate, loadResourceSchemas } from './cfn-schema';
import { AWS, LOCALSTACK, resourcesOf, synth, type Context } from './synth';

const schemas = loadResourceSchemas();

const VARIANTS: Array<[string, Context]> = [
  ['aws', AWS],
  ['localstack', LOCALSTACK],
  ['aws with bedrock', { ...AWS, backend: 'bedrock', bedrockModelId: 'us.meta.llama3-3-70b-instruct-v1:0' }],
  [
    'aws with reserved concurrency, chosen zones and the existing logging role',
    {
      ...AWS,
      reserveConcurrency: 'true',
      availabilityZones: 'us-east-1a,us-east-1b',
      apiGatewayCloudWatchRole: 'existing',
    },
  ],
  [
    'aws with kvStore=s3, no API key, retain',
    { ...AWS, kvStore: 's3', apiKeyRequired: 'false', removalPolicy: 'retain' },
  ],
];

/** A deep copy of a template, to break on purpose. */
const copyOf = (
  context: Context,
): { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> } =>
  JSON.parse(JSON.stringify(synth(context).template.toJSON())) as never;

const firstOf = (template: ReturnType<typeof copyOf>, type: string): { Properties: Record<string, unknown> } =>
  Object.values(template.Resources).find((r) => r.Type === type)!;

describe(`CloudFormation schema gate (${schemas.source})`, () => {
  it('has the schemas of every resource type the stack uses', () => {
    expect(schemas.resources.size).toBeGreaterThan(1000);
    for (const type of ['AWS::Lambda::Function', 'AWS::ElastiCache::ServerlessCache', 'AWS::ApiGateway::Method']) {
      expect(schemas.resources.has(type)).toBe(true);
    }
  });

  for (const [name, context] of VARIANTS) {
    it(`accepts every resource type, property name and value type of the template (${name})`, () => {
      const template = synth(context).template.toJSON();
      expect(Object.keys(resourcesOf(synth(context).template, 'AWS::Lambda::Function')).length).toBeGreaterThan(2);
      expect(checkTemplate(template, schemas)).toEqual([]);
    });
  }

  it('catches a misspelled property name', () => {
    const template = copyOf(AWS);
    const queue = firstOf(template, 'AWS::SQS::Queue');
    queue.Properties.VisibilityTimout = queue.Properties.VisibilityTimeout;
    delete queue.Properties.VisibilityTimeout;
    expect(checkTemplate(template, schemas)).toEqual([
      expect.stringMatching(/: unknown property VisibilityTimout \(known: .*VisibilityTimeout/),
    ]);
  });

  it('catches a missing required property', () => {
    const template = copyOf(AWS);
    delete firstOf(template, 'AWS::ElastiCache::ServerlessCache').Properties.Engine;
    expect(checkTemplate(template, schemas)).toEqual([expect.stringMatching(/: missing required property Engine$/)]);
  });

  it('catches a value of the wrong type, at the top level and nested', () => {
    const template = copyOf(LOCALSTACK);
    const fn = firstOf(template, 'AWS::Lambda::Function');
    fn.Properties.MemorySize = '1024';
    fn.Properties.TracingConfig = { Mode: 'Active', Sampling: 1 };
    const problems = checkTemplate(template, schemas);
    expect(problems).toContainEqual(expect.stringMatching(/\.MemorySize: expected an integer, got "1024"$/));
    expect(problems).toContainEqual(expect.stringMatching(/\.TracingConfig: unknown property Sampling/));
    expect(problems).toHaveLength(2);
  });

  it('catches a value outside the allowed ones and an unknown resource type', () => {
    const template = copyOf(AWS);
    firstOf(template, 'AWS::ElastiCache::ServerlessCache').Properties.NetworkType = 'ipv5';
    template.Resources.Extra = { Type: 'AWS::SQS::Queues', Properties: {} };
    const problems = checkTemplate(template, schemas);
    expect(problems).toContainEqual(expect.stringMatching(/NetworkType: "ipv5" is not one of ipv4, ipv6, dual_stack/));
    expect(problems).toContainEqual('Extra: unknown resource type AWS::SQS::Queues');
  });
});
