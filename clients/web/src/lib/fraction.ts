/**
 * An exact rational number on BigInt: the one numeric type for odds and returns.
 *
 * Odds and money never touch a JavaScript float (PROTOCOL.md, Numbers): wire prices
 * are parsed straight into a Frac, returns are computed as a Frac and rounded down
 * to the minor unit once, with integer division.
 */

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) {
    [x, y] = [y, x % y];
  }
  return x;
}

export class Frac {
  /** Numerator (carries the sign). */
  readonly n: bigint;
  /** Denominator, always > 0. */
  readonly d: bigint;

  private constructor(n: bigint, d: bigint) {
    this.n = n;
    this.d = d;
  }

  static of(n: bigint | number, d: bigint | number = 1n): Frac {
    let num = typeof n === "bigint" ? n : BigInt(n);
    let den = typeof d === "bigint" ? d : BigInt(d);
    if (den === 0n) throw new RangeError("zero denominator");
    if (den < 0n) {
      num = -num;
      den = -den;
    }
    const g = gcd(num, den);
    return g > 1n ? new Frac(num / g, den / g) : new Frac(num, den);
  }

  /** An exact decimal string ("2.5", "-0.67", "1000") as a fraction. */
  static parseDecimal(text: string): Frac {
    const match = /^([+-]?)([0-9]+)(?:\.([0-9]+))?$/.exec(text);
    if (!match) throw new RangeError(`not a decimal number: ${JSON.stringify(text)}`);
    const [, sign, whole, part = ""] = match;
    const n = BigInt(whole + part) * (sign === "-" ? -1n : 1n);
    return Frac.of(n, 10n ** BigInt(part.length));
  }

  /** "a/b" as a fraction. */
  static parseRatio(text: string): Frac {
    const match = /^([0-9]+)\/([0-9]+)$/.exec(text);
    if (!match) throw new RangeError(`not a fraction: ${JSON.stringify(text)}`);
    return Frac.of(BigInt(match[1]), BigInt(match[2]));
  }

  add(o: Frac | bigint): Frac {
    const f = toFrac(o);
    return Frac.of(this.n * f.d + f.n * this.d, this.d * f.d);
  }

  sub(o: Frac | bigint): Frac {
    const f = toFrac(o);
    return Frac.of(this.n * f.d - f.n * this.d, this.d * f.d);
  }

  mul(o: Frac | bigint): Frac {
    const f = toFrac(o);
    return Frac.of(this.n * f.n, this.d * f.d);
  }

  div(o: Frac | bigint): Frac {
    const f = toFrac(o);
    if (f.n === 0n) throw new RangeError("division by zero");
    return Frac.of(this.n * f.d, this.d * f.n);
  }

  neg(): Frac {
    return Frac.of(-this.n, this.d);
  }

  abs(): Frac {
    return this.n < 0n ? this.neg() : this;
  }

  cmp(o: Frac | bigint): number {
    const f = toFrac(o);
    const left = this.n * f.d;
    const right = f.n * this.d;
    return left < right ? -1 : left > right ? 1 : 0;
  }

  eq(o: Frac | bigint): boolean {
    return this.cmp(o) === 0;
  }

  /** The largest integer ≤ this (rounding toward −∞, also for negatives). */
  floor(): bigint {
    const q = this.n / this.d; // BigInt division truncates toward zero
    return this.n < 0n && q * this.d !== this.n ? q - 1n : q;
  }

  toString(): string {
    return this.d === 1n ? `${this.n}` : `${this.n}/${this.d}`;
  }
}

function toFrac(value: Frac | bigint): Frac {
  return typeof value === "bigint" ? Frac.of(value) : value;
}

export const ZERO = Frac.of(0n);
export const ONE = Frac.of(1n);
