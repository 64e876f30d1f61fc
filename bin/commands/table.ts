import Table from 'cli-table3';

/** A plain table: no colour codes, so piped output and logs stay clean. */
export function plainTable(
  head: string[],
  extra: Omit<Table.TableConstructorOptions, 'head' | 'style'> = {},
): Table.Table {
  return new Table({ head, style: { head: [], border: [] }, ...extra });
}
