/**
 * Request records and cancellation markers: a DynamoDB table keyed by `pk`, items expiring through the
 * `expiresAt` TTL attribute the DynamoDB result-store adapter writes (epoch seconds).
 */
import { Validations, type RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export const RESULT_PARTITION_KEY = 'pk';
export const RESULT_TTL_ATTRIBUTE = 'expiresAt';

export interface ResultStoreProps {
  readonly pointInTimeRecovery: boolean;
  readonly removalPolicy: RemovalPolicy;
}

export class ResultStore extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: ResultStoreProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: RESULT_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: RESULT_TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery },
      removalPolicy: props.removalPolicy,
    });
    if (!props.pointInTimeRecovery) {
      Validations.of(this.table).acknowledge({
        id: 'AwsSolutions-DDB3',
        reason:
          'Records are request timelines that expire within hours (TTL); restoring them has no value in a sandbox. Turn it on with -c pointInTimeRecovery=true.',
      });
    }
  }

  /** Get, put and delete single items: exactly what the DynamoDB result-store adapter calls. */
  grantReadWrite(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [this.table.tableArn],
      }),
    );
  }
}
