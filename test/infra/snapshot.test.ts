import { describe, expect, it } from 'vitest';
import { AWS, LOCALSTACK, synth } from './synth';

/** The template with asset hashes and S3 keys replaced, so the snapshot changes with the infra, not the handler code. */
function normalised(template: ReturnType<typeof synth>['template']): unknown {
  const json = JSON.stringify(template.toJSON());
  return JSON.parse(json.replace(/[0-9a-f]{64}(\.zip|\.json)?/g, '[ASSET_HASH]$1'));
}

describe('DisaggStack template snapshot', () => {
  it('matches the reviewed aws template', () => {
    expect(normalised(synth(AWS).template)).toMatchSnapshot();
  });

  it('matches the reviewed localstack template', () => {
    expect(normalised(synth(LOCALSTACK).template)).toMatchSnapshot();
  });
});
