/**
 * Odds: wire prices and the display formats, ported exactly from
 * sportsbook_core/odds_formats.py and fractional_ladder.py (RULES.md §7).
 *
 * A wire price is an exact string: decimal odds ("2.5", "1.01", "1000") or, in a
 * fractionally priced market, the customary fraction ("5/2" means decimal 3.5).
 * Display rounding is for reading only; it never feeds a stake or a return.
 */
import { Frac, ONE, ZERO } from "./fraction";

export type OddsFormat = "decimal" | "fractional" | "american" | "hongkong" | "malay" | "indonesian";

/** The formats the switcher offers (all six convert; these three are on screen). */
export const DISPLAY_FORMATS: { value: OddsFormat; label: string }[] = [
  { value: "decimal", label: "Decimal" },
  { value: "fractional", label: "Fractional" },
  { value: "american", label: "American" },
];

/** Decimal odds as an exact rational; `fractional` keeps the wire form (UK racing). */
export interface Price {
  readonly odds: Frac;
  readonly fractional: boolean;
}

const DECIMAL_RE = /^[0-9]{1,7}(\.[0-9]{1,6})?$/;
const FRACTION_RE = /^([0-9]{1,7})\/([1-9][0-9]{0,6})$/;

/** Read a wire price (Price.parse in sportsbook_core/prices.py); throws on anything else. */
export function parsePrice(text: string): Price {
  const fraction = FRACTION_RE.exec(text);
  if (fraction) {
    const num = BigInt(fraction[1]);
    if (num === 0n) throw new RangeError(`fractional price must be above 0/1: ${text}`);
    return { odds: ONE.add(Frac.of(num, BigInt(fraction[2]))), fractional: true };
  }
  if (!DECIMAL_RE.test(text)) throw new RangeError(`not a decimal or fractional price: ${text}`);
  const odds = Frac.parseDecimal(text);
  if (odds.cmp(ONE) <= 0) throw new RangeError(`odds must be above 1: ${text}`);
  return { odds, fractional: false };
}

/** The customary UK fractional ladder (sportsbook_core/fractional_ladder.py). */
const CUSTOMARY: [number, number][] = [
  [1, 100], [1, 66], [1, 50], [1, 40], [1, 33], [1, 25], [1, 20], [1, 16], [1, 14], [1, 12],
  [1, 10], [1, 9], [1, 8], [2, 15], [1, 7], [2, 13], [1, 6], [2, 11], [1, 5], [2, 9], [1, 4],
  [2, 7], [3, 10], [1, 3], [4, 11], [3, 8], [2, 5], [4, 9], [1, 2], [8, 15], [4, 7], [8, 13],
  [4, 6], [8, 11], [4, 5], [5, 6], [10, 11], [20, 21], [1, 1], [21, 20], [11, 10], [6, 5],
  [5, 4], [11, 8], [6, 4], [13, 8], [7, 4], [15, 8], [2, 1], [85, 40], [9, 4], [5, 2], [11, 4],
  [3, 1], [10, 3], [7, 2], [4, 1], [9, 2], [5, 1], [11, 2], [6, 1], [13, 2], [7, 1], [15, 2],
  [8, 1], [17, 2], [9, 1], [10, 1], [11, 1], [12, 1], [14, 1], [16, 1], [18, 1], [20, 1],
  [22, 1], [25, 1], [28, 1], [33, 1], [40, 1], [50, 1], [66, 1], [80, 1], [100, 1], [125, 1],
  [150, 1], [200, 1], [250, 1], [300, 1], [400, 1], [500, 1],
];

/** Profit fractions (odds − 1), ascending. */
export const RUNGS: readonly Frac[] = CUSTOMARY.map(([n, d]) => Frac.of(n, d));
const SPELLING = new Map<string, string>(CUSTOMARY.map(([n, d]) => [Frac.of(n, d).toString(), `${n}/${d}`]));

/** `2/3` → "4/6"; a fraction off the ladder is written reduced. */
export function customaryText(profit: Frac): string {
  return SPELLING.get(profit.toString()) ?? `${profit.n}/${profit.d}`;
}

/** The customary profit fraction nearest decimal `odds` (ties: the smaller rung). */
export function snapNearest(odds: Frac): Frac {
  const profit = odds.sub(ONE);
  let index = RUNGS.findIndex((rung) => rung.cmp(profit) >= 0); // bisect_left
  if (index < 0) index = RUNGS.length;
  const candidates = [index - 1, index].filter((i) => i >= 0 && i < RUNGS.length).map((i) => RUNGS[i]);
  let best = candidates[0];
  for (const rung of candidates.slice(1)) {
    const byDistance = rung.sub(profit).abs().cmp(best.sub(profit).abs());
    if (byDistance < 0 || (byDistance === 0 && rung.cmp(best) < 0)) best = rung;
  }
  return best;
}

// ---- exact conversions -------------------------------------------------------------

const TWO = Frac.of(2n);
const HUNDRED = Frac.of(100n);

export function decimalToFractional(odds: Frac): Frac {
  return odds.sub(ONE);
}

/** `+100·(D−1)` for D ≥ 2, `−100/(D−1)` for D < 2 (exact, unrounded). */
export function decimalToAmerican(odds: Frac): Frac {
  return odds.cmp(TWO) >= 0 ? HUNDRED.mul(odds.sub(ONE)) : HUNDRED.neg().div(odds.sub(ONE));
}

/** `+A` → `1 + A/100`; `−A` → `1 + 100/A`. */
export function americanToDecimal(american: Frac): Frac {
  if (american.cmp(HUNDRED) >= 0) return ONE.add(american.div(HUNDRED));
  if (american.cmp(HUNDRED.neg()) <= 0) return ONE.add(HUNDRED.div(american.neg()));
  throw new RangeError(`American odds must be ≥ +100 or ≤ -100, got ${american}`);
}

export function decimalToHongkong(odds: Frac): Frac {
  return odds.sub(ONE);
}

export function decimalToIndonesian(odds: Frac): Frac {
  return odds.cmp(TWO) >= 0 ? odds.sub(ONE) : ONE.neg().div(odds.sub(ONE));
}

export function decimalToMalay(odds: Frac): Frac {
  return odds.cmp(TWO) <= 0 ? odds.sub(ONE) : ONE.neg().div(odds.sub(ONE));
}

/** Read odds written in `fmt` (decimal, fractional "a/b" or American "+150"/"-110") exactly. */
export function parseOdds(text: string, fmt: "decimal" | "fractional" | "american"): Frac {
  if (fmt === "decimal" || fmt === "fractional") {
    if ((fmt === "fractional") !== text.includes("/")) throw new RangeError(`not ${fmt} odds: ${text}`);
    return parsePrice(text).odds;
  }
  if (!/^[+-]?[0-9]{1,7}(\.[0-9]{1,6})?$/.test(text)) throw new RangeError(`not american odds: ${text}`);
  return americanToDecimal(Frac.parseDecimal(text.replace(/^\+/, "")));
}

// ---- display -----------------------------------------------------------------------

/** `value·10^places` to the nearest integer, halves away from zero (ROUND_HALF_UP). */
function roundHalfUp(value: Frac, places: number): bigint {
  const scaled = value.abs().mul(10n ** BigInt(places));
  const magnitude = (2n * scaled.n + scaled.d) / (2n * scaled.d);
  return value.n < 0n ? -magnitude : magnitude;
}

/** `value` to 2 dp, more places while 2 dp would show the excluded `boundary`. */
function fixed(value: Frac, boundary: Frac): string {
  let places = 2;
  let units = roundHalfUp(value, places);
  while (Frac.of(units, 10n ** BigInt(places)).eq(boundary)) {
    places += 1;
    units = roundHalfUp(value, places);
  }
  const magnitude = units < 0n ? -units : units;
  const scale = 10n ** BigInt(places);
  const whole = magnitude / scale;
  const part = (magnitude % scale).toString().padStart(places, "0");
  return `${units < 0n ? "-" : ""}${whole}.${part}`;
}

export function displayDecimal(odds: Frac): string {
  return fixed(odds, ONE);
}

export function displayAmerican(odds: Frac): string {
  const units = roundHalfUp(decimalToAmerican(odds), 0);
  return units > 0n ? `+${units}` : `${units}`;
}

export function displayFractional(price: Price): string {
  const profit = price.odds.sub(ONE);
  if (price.fractional) return customaryText(profit);
  if (profit.cmp(RUNGS[RUNGS.length - 1]) > 0) return `${roundHalfUp(profit, 0)}/1`;
  return customaryText(snapNearest(price.odds));
}

/** The display string of `price` in `fmt` (odds_formats.display). */
export function display(price: Price, fmt: OddsFormat): string {
  switch (fmt) {
    case "decimal":
      return displayDecimal(price.odds);
    case "fractional":
      return displayFractional(price);
    case "american":
      return displayAmerican(price.odds);
    case "hongkong":
      return fixed(decimalToHongkong(price.odds), ZERO);
    case "malay":
      return fixed(decimalToMalay(price.odds), ZERO);
    case "indonesian":
      return fixed(decimalToIndonesian(price.odds), ZERO);
  }
}

/** Display a wire price string; `null` (no price offered) is shown as an em dash. */
export function displayWire(wire: string | null | undefined, fmt: OddsFormat): string {
  if (wire == null) return "—";
  try {
    return display(parsePrice(wire), fmt);
  } catch {
    return wire;
  }
}

/** Compare two wire prices exactly: −1, 0, 1 (for the up/down flash). */
export function comparePrices(a: string, b: string): number {
  return parsePrice(a).odds.cmp(parsePrice(b).odds);
}
