/** Values the CLI needs before it loads any command (exit codes, defaults shown in --help), so help loads nothing heavy. */

/** Exit code for bad input: unknown ids, configs that do not fit, invalid flags. */
export const EXIT_USAGE = 2;

/** Share of requests meeting both SLOs that counts as sustaining a load (`disagg sweep --target`). */
export const DEFAULT_SWEEP_TARGET = 0.9;

/** The reference systems `disagg serve` runs: Llama 3.3 70B on one trn2.48xlarge and four CS-3s, against one p5.48xlarge. */
export const DEFAULT_SYSTEM = 'disagg:trn2x16+cs3x4';
export const DEFAULT_COMPARE: readonly string[] = ['colocated:h100x8'];
