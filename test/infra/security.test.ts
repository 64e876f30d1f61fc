import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { BEDROCK_ACTIONS } from '../../lib/infra/bedrock-access';
import { AWS, LOCALSTACK, resourcesOf, synth, type Context } from './synth';

interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
}

/** Every statement of every identity policy: AWS::IAM::Policy documents and roles' inline policies. */
function identityStatements(context: Context): Array<{ policy: string; statement: Statement }> {
  const { template } = synth(context);
  const out: Array<{ policy: string; statement: Statement }> = [];
  for (const [id, policy] of Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))) {
    const doc = policy.Properties?.PolicyDocument as { Statement: Statement[] };
    for (const statement of doc.Statement) out.push({ policy: id, statement });
  }
  for (const [id, role] of Object.entries(resourcesOf(template, 'AWS::IAM::Role'))) {
    const inline = (role.Properties?.Policies ?? []) as Array<{ PolicyDocument: { Statement: Statement[] } }>;
    for (const p of inline) for (const statement of p.PolicyDocument.Statement) out.push({ policy: id, statement });
  }
  return out;
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesList = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

const BEDROCK: Context = { ...AWS, backend: 'bedrock', bedrockModelId: 'meta.llama3-1-70b-instruct-v1:0' };
const PROFILES: Array<[string, Context]> = [
  ['aws', AWS],
  ['localstack', LOCALSTACK],
  ['aws with bedrock', BEDROCK],
];

describe('IAM least privilege', () => {
  for (const [name, context] of PROFILES) {
    it(`grants no "*" action and no service-wide wildcard such as sqs:* anywhere (${name})`, () => {
      const statements = identityStatements(context);
      expect(statements.length).toBeGreaterThan(10);
      const wildcards = statements
        .filter(({ statement }) => statement.Effect === 'Allow')
        .flatMap(({ policy, statement }) =>
          actionsOf(statement)
            .filter((action) => action === '*' || /^[a-z0-9-]+:\*$/i.test(action))
            .map((action) => `${policy}: ${action}`),
        );
      expect(wildcards).toEqual([]);
    });

    it(`allows Resource "*" only for the X-Ray actions that accept nothing else (${name})`, () => {
      const starred = identityStatements(context)
        .filter(({ statement }) => resourcesList(statement).includes('*'))
        .flatMap(({ statement }) => actionsOf(statement));
      expect(new Set(starred)).toEqual(new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']));
    });
  }

  it('lets the API functions invoke only the prefill function, and prefill only its failure handler, unqualified', () => {
    const invokes = identityStatements(AWS).filter(({ statement }) =>
      actionsOf(statement).includes('lambda:InvokeFunction'),
    );
    expect(invokes).toHaveLength(3);
    const targets = invokes.map(({ policy, statement }) => [policy.replace(/[0-9A-F]{8}$/, ''), statement.Resource]);
    expect(targets).toEqual(
      expect.arrayContaining([
        [
          expect.stringMatching(/^InferenceApiApiHandler/),
          { 'Fn::GetAtt': [expect.stringMatching(/^PrefillStagePrefillFunction/), 'Arn'] },
        ],
        [
          expect.stringMatching(/^InferenceApiApiStreamHandler/),
          { 'Fn::GetAtt': [expect.stringMatching(/^PrefillStagePrefillFunction/), 'Arn'] },
        ],
        [
          expect.stringMatching(/^PrefillStagePrefillFunction/),
          { 'Fn::GetAtt': [expect.stringMatching(/^PrefillStagePrefillFailures/), 'Arn'] },
        ],
      ]),
    );
  });

  it('grants KV access only to the stages that move KV blobs, not to the API or the failure handler', () => {
    const kv = identityStatements(LOCALSTACK).filter(({ statement }) =>
      actionsOf(statement).some((a) => a.startsWith('s3:')),
    );
    const holders = new Set(kv.map(({ policy }) => policy.replace(/ServiceRoleDefaultPolicy[0-9A-F]+$/, '')));
    expect([...holders].sort()).toEqual([
      expect.stringMatching(/^DecodeStageDecode/),
      expect.stringMatching(/^PrefillStagePrefillFunction/),
    ]);
  });

  it('lets only decode and the failure handler send to the dead-letter queue', () => {
    const senders = identityStatements(AWS)
      .filter(
        ({ statement }) =>
          JSON.stringify(statement.Resource).includes('DeadLetterQueue') &&
          actionsOf(statement).includes('sqs:SendMessage'),
      )
      .map(({ policy }) => policy.replace(/ServiceRoleDefaultPolicy[0-9A-F]+$/, ''));
    expect([...new Set(senders)].sort()).toEqual([
      expect.stringMatching(/^DecodeStageDecode/),
      expect.stringMatching(/^PrefillStagePrefillFailures/),
    ]);
  });

  it('gives the result store exactly GetItem, PutItem and DeleteItem on the table', () => {
    const dynamo = identityStatements(LOCALSTACK).filter(({ statement }) =>
      actionsOf(statement).some((a) => a.startsWith('dynamodb:')),
    );
    // API, prefill, its failure handler and decode.
    expect(dynamo).toHaveLength(4);
    for (const { statement } of dynamo) {
      expect(actionsOf(statement).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem']);
      expect(statement.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/ResultsTable/), 'Arn'] });
    }
  });
});

describe('Bedrock access', () => {
  it('allows only InvokeModel and InvokeModelWithResponseStream, on the configured foundation model ARN only', () => {
    const bedrock = identityStatements(BEDROCK).filter(({ statement }) =>
      actionsOf(statement).some((a) => a.startsWith('bedrock:')),
    );
    // Prefill and decode generate; the API functions never call the model.
    expect(bedrock).toHaveLength(2);
    for (const { statement } of bedrock) {
      expect(actionsOf(statement).sort()).toEqual([...BEDROCK_ACTIONS].sort());
      expect(statement.Resource).toEqual({
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':bedrock:',
            { Ref: 'AWS::Region' },
            '::foundation-model/meta.llama3-1-70b-instruct-v1:0',
          ],
        ],
      });
    }
  });

  it('grants no Bedrock action with the reference backend', () => {
    const bedrock = identityStatements(AWS).filter(({ statement }) =>
      actionsOf(statement).some((a) => a.startsWith('bedrock:')),
    );
    expect(bedrock).toEqual([]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  const variants: Array<[string, Context]> = [
    ...PROFILES,
    [
      'aws with kvStore=s3, no API key, retain, PITR',
      { ...AWS, kvStore: 's3', apiKeyRequired: 'false', removalPolicy: 'retain', pointInTimeRecovery: 'true' },
    ],
    [
      'aws with a cross-region inference profile',
      { ...AWS, backend: 'bedrock', bedrockModelId: 'us.meta.llama3-3-70b-instruct-v1:0' },
    ],
  ];
  for (const [name, context] of variants) {
    it(`reports no unacknowledged error (${name})`, () => {
      const { stack } = synth(context);
      const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
      const errors = report.violations
        .filter((v) => v.severity === undefined || v.severity === 'error')
        .map(
          (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId).join(', ')}`,
        );
      expect(errors).toEqual([]);
    });
  }
});

/** Every AwsSolutions rule acknowledged anywhere in the stack. */
function acknowledgedRules(context: Context): string[] {
  const ids = new Set<string>();
  for (const construct of synth(context).stack.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const key of Object.keys(entry.data as object)) {
        const id = key.replace(/^annotation::/i, '');
        if (id.startsWith('AwsSolutions-')) ids.add(id.replace(/<HandoffKvBucket[0-9A-F]+\.Arn>/, '<KvBucket.Arn>'));
      }
    }
  }
  return [...ids].sort();
}

describe('cdk-nag acknowledgements (the reviewed register; a new one must be added here on purpose)', () => {
  const common = [
    'AwsSolutions-APIG3',
    'AwsSolutions-APIG4',
    'AwsSolutions-COG4',
    'AwsSolutions-DDB3',
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'AwsSolutions-IAM5[Resource::*]',
    'AwsSolutions-L1',
  ];

  it('acknowledges on aws only the shared rules plus the VPC ones (flow logs, VPC access policy)', () => {
    expect(acknowledgedRules(AWS)).toEqual(
      [
        ...common,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        'AwsSolutions-VPC7',
      ].sort(),
    );
  });

  it('acknowledges on localstack only the shared rules plus the KV bucket ones (access logs, object wildcard)', () => {
    expect(acknowledgedRules(LOCALSTACK)).toEqual(
      [...common, 'AwsSolutions-IAM5[Resource::<KvBucket.Arn>/*]', 'AwsSolutions-S1'].sort(),
    );
  });

  it('drops the point-in-time-recovery acknowledgement once recovery is on', () => {
    expect(acknowledgedRules({ ...LOCALSTACK, pointInTimeRecovery: 'true' })).not.toContain('AwsSolutions-DDB3');
  });
});
