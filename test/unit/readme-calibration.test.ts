import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { calibrationMarkdown } from '../../bin/commands/calibrate';

/** A markdown table as cell text only: Prettier's column padding and dash counts don't matter. */
const tableCells = (markdown: string): string =>
  markdown
    .split('\n')
    .filter((line) => line.trim().startsWith('|'))
    .map((line) =>
      line
        .split('|')
        .map((cell) => cell.trim().replace(/^:?-+:?$/, '---'))
        .join('|'),
    )
    .join('\n');

describe('README', () => {
  it('carries the fit and cross-validation tables exactly as `disagg calibrate --markdown` prints them', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(tableCells(readme)).toContain(tableCells(calibrationMarkdown()));
  });
});
