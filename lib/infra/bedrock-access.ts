/**
 * Bedrock permissions for the bedrock backend: the two invoke actions (Converse and ConverseStream are
 * authorised as InvokeModel and InvokeModelWithResponseStream) on the configured model only.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

export const BEDROCK_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'] as const;

/** Cross-region inference profile ids start with a geography (`us.meta.llama3-3-70b-instruct-v1:0`). */
const INFERENCE_PROFILE_PREFIX = /^(us|us-gov|eu|apac|jp|au|ca|global)\./;

/** The ARNs a model id is invoked through, in the stack's region and partition. */
export function bedrockModelArns(scope: IConstruct, modelId: string): string[] {
  const stack = Stack.of(scope);
  const prefix = INFERENCE_PROFILE_PREFIX.exec(modelId);
  if (!prefix) return [`arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${modelId}`];
  // A profile routes to the same foundation model in any region of its geography, so IAM needs both.
  const foundationModelId = modelId.slice(prefix[0].length);
  return [
    `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:inference-profile/${modelId}`,
    `arn:${stack.partition}:bedrock:*::foundation-model/${foundationModelId}`,
  ];
}

/** Grants the invoke actions on the model's ARNs; `owner` carries the nag acknowledgement a profile needs. */
export function grantBedrockInvoke(grantee: iam.IGrantable, owner: IConstruct, modelId: string): void {
  const resources = bedrockModelArns(owner, modelId);
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...BEDROCK_ACTIONS], resources }));
  const crossRegion = resources.find((arn) => arn.includes(':bedrock:*::'));
  if (crossRegion) {
    Validations.of(owner).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${modelId.replace(INFERENCE_PROFILE_PREFIX, '')}]`,
      reason:
        'A cross-region inference profile may serve the request from any region of its geography; the grant names the one foundation model, only the region is open.',
    });
  }
}
