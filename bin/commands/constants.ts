/** Values the CLI needs before it loads any command (exit codes, defaults shown in --help), so help loads nothing heavy. */

/** Exit code for bad input: unknown ids, configs that do not fit, invalid flags. */
export const EXIT_USAGE = 2;

/** Share of requests meeting both SLOs that counts as sustaining a load (`disagg sweep --target`). */
export const DEFAULT_SWEEP_TARGET = 0.9;
