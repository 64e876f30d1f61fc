/**
 * exp, sin and cos from + - * / only. ECMAScript leaves Math.exp/sin/cos implementation-approximated,
 * and prefill and decode may run on different engines; IEEE arithmetic is bit-identical everywhere.
 */

const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
const INV_LN2 = 1.4426950408889634;
const POW2_BIAS = 1100;
// Exact powers of two 2^-1100 .. 2^1100 (doubling and halving are exact, subnormals included).
const POW2 = (() => {
  const t = new Float64Array(2 * POW2_BIAS + 1);
  let up = 1;
  let down = 1;
  for (let k = 0; k <= POW2_BIAS; k++) {
    t[POW2_BIAS + k] = up;
    t[POW2_BIAS - k] = down;
    up *= 2;
    down *= 0.5;
  }
  return t;
})();

/** e^x to about 1e-13 relative error. */
export function expDet(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < -745) return 0;
  if (x > 709) return Infinity;
  const k = Math.round(x * INV_LN2);
  // Cody-Waite reduction: r = x - k ln2 with |r| <= ln2 / 2, then a degree-10 Taylor polynomial.
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = r * (1 / 3628800) + 1 / 362880;
  p = p * r + 1 / 40320;
  p = p * r + 1 / 5040;
  p = p * r + 1 / 720;
  p = p * r + 1 / 120;
  p = p * r + 1 / 24;
  p = p * r + 1 / 6;
  p = p * r + 1 / 2;
  p = p * r + 1;
  p = p * r + 1;
  return p * POW2[POW2_BIAS + k]!;
}

// Pairs (1/(2n)!, 1/(2n+1)!) for n = 11 down to 0, consumed by Horner's rule with alternating sign.
const COS_SIN_COEFFS: readonly [number, number][] = (() => {
  const pairs: [number, number][] = [];
  for (let n = 11; n >= 0; n--) {
    let f2n = 1;
    for (let i = 2; i <= 2 * n; i++) f2n *= i;
    pairs.push([1 / f2n, 1 / (f2n * (2 * n + 1))]);
  }
  return pairs;
})();

const TWO_PI_HI = 6.283185307179586;
const TWO_PI_LO = 2.4492935982947064e-16;
const INV_TWO_PI = 0.15915494309189535;

/** Writes [cos x, sin x] into out[off], out[off + 1]; about 1e-12 absolute error for |x| up to 1e6. */
export function sinCosDet(x: number, out: Float64Array, off: number): void {
  const k = Math.round(x * INV_TWO_PI);
  const r = x - k * TWO_PI_HI - k * TWO_PI_LO; // |r| <= pi
  const r2 = r * r;
  // Taylor series to x^22 / x^23: the first omitted term is below 1e-11 on [-pi, pi].
  let c = 0;
  let s = 0;
  for (const [fc, fs] of COS_SIN_COEFFS) {
    c = fc - r2 * c;
    s = fs - r2 * s;
  }
  out[off] = c;
  out[off + 1] = r * s;
}

/** The positive m-th root of c > 0 by Newton's method from above: monotone, so it stops when it stops shrinking. */
export function rootDet(c: number, m: number): number {
  if (!(c > 0) || !Number.isInteger(m) || m < 1) throw new RangeError(`rootDet: need c > 0 and integer m >= 1`);
  let b = Math.max(1, c);
  for (let i = 0; i < 10_000; i++) {
    let pm1 = 1;
    for (let j = 1; j < m; j++) pm1 *= b;
    const next = b - (pm1 * b - c) / (m * pm1);
    if (!(next < b)) break;
    b = next;
  }
  return b;
}
