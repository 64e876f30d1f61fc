/**
 * The CDK app (cdk.json "app"): reads the config from context (`-c profile=localstack`, ...), builds
 * the stack for that profile and runs the cdk-nag AWS Solutions checks on every synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from '../lib/infra/config';
import { DisaggStack, stackName } from '../lib/infra/stack';

const app = new App();
const config = readConfig((key) => app.node.tryGetContext(key));
new DisaggStack(app, stackName(config), {
  config,
  description: `Disaggregated LLM inference reference (${config.profile} profile): API -> prefill -> KV handoff -> decode`,
});
// cdk-nag 3 runs as a policy-validation plugin (not an Aspect): an unacknowledged error fails synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
