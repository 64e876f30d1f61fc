/**
 * The private network the ElastiCache KV store needs: isolated subnets only (no NAT gateway, no internet
 * route), security groups that let the functions reach Valkey on 6379 and the interface endpoints on 443,
 * and the VPC endpoints that replace the internet for every AWS API the functions call.
 */
import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { FunctionNetwork } from './disagg-function';

export const VALKEY_PORT = 6379;

export interface KvNetworkProps {
  /** Adds the bedrock-runtime interface endpoint. */
  readonly bedrock: boolean;
  /**
   * The two (or more) zones the subnets go in. Empty: the region's first two, which may be zones some interface
   * endpoint services do not offer; naming them is the fix when a deploy fails on an endpoint.
   */
  readonly availabilityZones: readonly string[];
}

export class KvNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** Attached to every function that runs in the VPC. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  /** Attached to the serverless cache; admits 6379 from the functions only. */
  readonly cacheSecurityGroup: ec2.SecurityGroup;
  readonly endpointSecurityGroup: ec2.SecurityGroup;
  /** Free gateway endpoints (S3, DynamoDB), by service. */
  readonly gatewayEndpoints: Readonly<Record<string, ec2.GatewayVpcEndpoint>>;
  /** Interface endpoints, by service: each costs an hourly fee per AZ plus data processed (see README). */
  readonly interfaceEndpoints: Readonly<Record<string, ec2.InterfaceVpcEndpoint>>;

  constructor(scope: Construct, id: string, props: KvNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      // Serverless ElastiCache needs subnets in at least two AZs; two keeps the endpoint bill lowest.
      ...(props.availabilityZones.length > 0 ? { availabilityZones: [...props.availabilityZones] } : { maxAzs: 2 }),
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // The default security group is attached to nothing here; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    Validations.of(this.vpc).acknowledge({
      id: 'AwsSolutions-VPC7',
      reason:
        'Sandbox reference: the subnets are isolated (no NAT, no internet gateway) and carry only Lambda-to-cache and endpoint traffic; flow logs are a per-GB cost a production deployment adds.',
    });

    // Egress stays open: isolated subnets route nowhere but the VPC, so the only destinations are the endpoints and the cache.
    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'Disagg functions: reach Valkey and the VPC endpoints',
      allowAllOutbound: true,
    });
    this.cacheSecurityGroup = new ec2.SecurityGroup(this, 'CacheSecurityGroup', {
      vpc: this.vpc,
      description: 'Disagg KV cache: Valkey from the functions only',
      allowAllOutbound: false,
    });
    this.cacheSecurityGroup.addIngressRule(
      this.functionSecurityGroup,
      ec2.Port.tcp(VALKEY_PORT),
      'Valkey (TLS) from the functions',
    );
    this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'Disagg VPC interface endpoints: HTTPS from the functions only',
      allowAllOutbound: false,
    });
    this.endpointSecurityGroup.addIngressRule(
      this.functionSecurityGroup,
      ec2.Port.tcp(443),
      'HTTPS from the functions',
    );

    this.gatewayEndpoints = {
      s3: this.vpc.addGatewayEndpoint('S3', {
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [this.subnets],
      }),
      dynamodb: this.vpc.addGatewayEndpoint('DynamoDb', {
        service: ec2.GatewayVpcEndpointAwsService.DYNAMODB,
        subnets: [this.subnets],
      }),
    };
    const services: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
      lambda: ec2.InterfaceVpcEndpointAwsService.LAMBDA,
      // No CloudWatch Logs endpoint: functions log to stdout, which Lambda ships outside the VPC.
      xray: ec2.InterfaceVpcEndpointAwsService.XRAY,
      ...(props.bedrock ? { bedrockRuntime: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME } : {}),
    };
    const interfaceEndpoints: Record<string, ec2.InterfaceVpcEndpoint> = {};
    for (const [name, service] of Object.entries(services)) {
      interfaceEndpoints[name] = this.vpc.addInterfaceEndpoint(endpointId(name), {
        service,
        subnets: this.subnets,
        privateDnsEnabled: true,
        securityGroups: [this.endpointSecurityGroup],
        // The security group above admits the functions only, not the whole VPC CIDR.
        open: false,
      });
    }
    this.interfaceEndpoints = interfaceEndpoints;
  }

  /** The placement for a function that must reach the cache. */
  get functionNetwork(): FunctionNetwork {
    return { vpc: this.vpc, subnets: this.subnets, securityGroup: this.functionSecurityGroup };
  }
}

function endpointId(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}Endpoint`;
}
