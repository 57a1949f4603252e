/**
 * Bet slip arithmetic, ported from sportsbook_core/bets.py (RULES.md §2, §4).
 *
 * A slip expands into lines: one per combination of legs its type covers, twice
 * over each-way (a win line and a place line per combination). Every line carries
 * the same stake. The potential return is `Σ stake × ∏ odds` over the lines, place
 * lines at `1 + (O−1)·fraction`, exact, rounded down to the minor unit once.
 */
import { Frac, ONE, ZERO } from "./fraction";
import type { Price } from "./odds";

export const MAX_LEGS = 20;

export type BetType = "SINGLE" | "ACCUMULATOR" | "SYSTEM";
export type SystemBet =
  | "DOUBLES"
  | "TREBLES"
  | "TRIXIE"
  | "PATENT"
  | "YANKEE"
  | "LUCKY15"
  | "CANADIAN"
  | "LUCKY31"
  | "HEINZ"
  | "LUCKY63"
  | "SUPER_HEINZ"
  | "GOLIATH";
export type PriceChangePolicy = "NONE" | "HIGHER" | "ANY";

/** system → [fixed selections or null, smallest fold]; full covers run to the n-fold. */
export const SYSTEM_SHAPES: Record<SystemBet, [number | null, number]> = {
  DOUBLES: [null, 2],
  TREBLES: [null, 3],
  TRIXIE: [3, 2],
  PATENT: [3, 1],
  YANKEE: [4, 2],
  LUCKY15: [4, 1],
  CANADIAN: [5, 2],
  LUCKY31: [5, 1],
  HEINZ: [6, 2],
  LUCKY63: [6, 1],
  SUPER_HEINZ: [7, 2],
  GOLIATH: [8, 2],
};

export const SYSTEM_NAMES: Record<SystemBet, string> = {
  DOUBLES: "Doubles",
  TREBLES: "Trebles",
  TRIXIE: "Trixie",
  PATENT: "Patent",
  YANKEE: "Yankee",
  LUCKY15: "Lucky 15",
  CANADIAN: "Canadian",
  LUCKY31: "Lucky 31",
  HEINZ: "Heinz",
  LUCKY63: "Lucky 63",
  SUPER_HEINZ: "Super Heinz",
  GOLIATH: "Goliath",
};

export const ALL_SYSTEMS = Object.keys(SYSTEM_SHAPES) as SystemBet[];

/** Each-way terms as the market offers them: places paid at `fraction` of the odds. */
export interface EachWayTerms {
  places: number;
  fraction: Frac;
}

/** `{"places": 3, "fraction": "1/4"}` from the wire. */
export function parseEachWay(wire: { places: number; fraction: string } | null | undefined): EachWayTerms | null {
  if (wire == null) return null;
  return { places: wire.places, fraction: Frac.parseRatio(wire.fraction) };
}

export function systemAccepts(system: SystemBet, selections: number): boolean {
  const [fixed, low] = SYSTEM_SHAPES[system];
  return fixed === null ? low <= selections && selections <= MAX_LEGS : selections === fixed;
}

/** The systems a slip of `n` legs can be. */
export function systemsFor(n: number): SystemBet[] {
  return ALL_SYSTEMS.filter((system) => systemAccepts(system, n));
}

/** Why the shape does not fit, or null (bets.shape_problem). */
export function shapeProblem(type: BetType, system: SystemBet | null, n: number): string | null {
  if (n > MAX_LEGS) return `at most ${MAX_LEGS} legs, got ${n}`;
  if (type === "SYSTEM") {
    if (system === null) return "a SYSTEM bet needs a system";
    if (!systemAccepts(system, n)) {
      const [fixed, low] = SYSTEM_SHAPES[system];
      return `${system} needs ${fixed === null ? `${low}+` : fixed} selections, got ${n}`;
    }
    return null;
  }
  if (system !== null) return `${type} bets take no system`;
  if (type === "SINGLE" && n !== 1) return `a SINGLE has exactly 1 leg, got ${n}`;
  if (type === "ACCUMULATOR" && n < 2) return `an ACCUMULATOR needs at least 2 legs, got ${n}`;
  return null;
}

/** The k of every k-fold the slip covers. */
export function foldSizes(type: BetType, system: SystemBet | null, n: number): number[] {
  const problem = shapeProblem(type, system, n);
  if (problem !== null) throw new RangeError(problem);
  if (type !== "SYSTEM" || system === null) return [n];
  const [fixed, low] = SYSTEM_SHAPES[system];
  const high = fixed === null ? low : n;
  const sizes: number[] = [];
  for (let k = low; k <= high; k++) sizes.push(k);
  return sizes;
}

function choose(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) result = (result * (n - k + i)) / i; // exact: stays integral
  return result;
}

/** `Σ C(n, k)` over the fold sizes, doubled each-way (RULES.md §4). */
export function lineCount(type: BetType, system: SystemBet | null, n: number, eachWay: boolean): number {
  const count = foldSizes(type, system, n).reduce((sum, k) => sum + choose(n, k), 0);
  return eachWay ? count * 2 : count;
}

export interface Line {
  legs: number[];
  place: boolean;
}

function combinations(n: number, k: number): number[][] {
  const out: number[][] = [];
  const combo: number[] = [];
  const walk = (start: number) => {
    if (combo.length === k) {
      out.push([...combo]);
      return;
    }
    for (let i = start; i < n; i++) {
      combo.push(i);
      walk(i + 1);
      combo.pop();
    }
  };
  walk(0);
  return out;
}

/** Every line, smallest folds first; each-way: a win then a place line per combination. */
export function expandLines(type: BetType, system: SystemBet | null, n: number, eachWay: boolean): Line[] {
  const lines: Line[] = [];
  for (const k of foldSizes(type, system, n)) {
    for (const legs of combinations(n, k)) {
      lines.push({ legs, place: false });
      if (eachWay) lines.push({ legs, place: true });
    }
  }
  return lines;
}

/** Place odds `1 + (O−1)·fraction`, exact. */
export function placeOdds(price: Price, terms: EachWayTerms): Frac {
  return ONE.add(price.odds.sub(ONE).mul(terms.fraction));
}

/** `Σ ∏` over the lines: the exact return per unit of stake per line. */
export function combinedOdds(lines: Line[], prices: Price[], terms: (EachWayTerms | null)[] = []): Frac {
  let total = ZERO;
  for (const line of lines) {
    let product = ONE;
    for (const i of line.legs) {
      if (!line.place) {
        product = product.mul(prices[i].odds);
        continue;
      }
      const legTerms = terms[i] ?? null;
      if (legTerms === null) throw new RangeError(`leg ${i} has no each-way terms for a place line`);
      product = product.mul(placeOdds(prices[i], legTerms));
    }
    total = total.add(product);
  }
  return total;
}

/** `Σ stake × ∏ odds`, exact, rounded down once at the end (minor units). */
export function potentialReturn(
  lines: Line[],
  prices: Price[],
  stakePerLine: bigint,
  terms: (EachWayTerms | null)[] = [],
): bigint {
  if (stakePerLine < 0n) throw new RangeError("stake must not be negative");
  return combinedOdds(lines, prices, terms).mul(stakePerLine).floor();
}

// ---- the slip as the customer builds it ------------------------------------------------

/** How the legs on the slip are bet: N singles, one accumulator, or a system bet. */
export type SlipMode = { kind: "SINGLES" } | { kind: "ACCUMULATOR" } | { kind: "SYSTEM"; system: SystemBet };

export interface SlipBet {
  type: BetType;
  system: SystemBet | null;
  /** Indices into the slip's legs. */
  legs: number[];
  lines: number;
  totalStake: bigint;
  potentialReturn: bigint;
}

export interface SlipSummary {
  bets: SlipBet[];
  lines: number;
  totalStake: bigint;
  potentialReturn: bigint;
}

/** The modes a slip of `n` legs offers. */
export function modesFor(n: number): SlipMode[] {
  if (n === 0) return [];
  const modes: SlipMode[] = [{ kind: "SINGLES" }];
  if (n >= 2 && n <= MAX_LEGS) modes.push({ kind: "ACCUMULATOR" });
  for (const system of systemsFor(n)) modes.push({ kind: "SYSTEM", system });
  return modes;
}

export function modeLabel(mode: SlipMode, n: number): string {
  if (mode.kind === "SINGLES") return n === 1 ? "Single" : `Singles (${n})`;
  if (mode.kind === "ACCUMULATOR") return `Accumulator (${n}-fold)`;
  return SYSTEM_NAMES[mode.system];
}

/**
 * The bets a slip places, their lines, total stake and potential return. Singles are
 * separate bets (each rounded down on its own, as the server does for each receipt);
 * a multiple or system bet is one bet, rounded down once.
 */
export function summarise(
  mode: SlipMode,
  prices: Price[],
  stakePerLine: bigint,
  eachWay: boolean,
  terms: (EachWayTerms | null)[] = [],
): SlipSummary {
  const n = prices.length;
  const bets: SlipBet[] = [];
  const one = (type: BetType, system: SystemBet | null, legIdx: number[]): SlipBet => {
    const legPrices = legIdx.map((i) => prices[i]);
    const legTerms = legIdx.map((i) => terms[i] ?? null);
    const lines = expandLines(type, system, legIdx.length, eachWay);
    return {
      type,
      system,
      legs: legIdx,
      lines: lines.length,
      totalStake: stakePerLine * BigInt(lines.length),
      potentialReturn: potentialReturn(lines, legPrices, stakePerLine, legTerms),
    };
  };
  if (mode.kind === "SINGLES") {
    for (let i = 0; i < n; i++) bets.push(one("SINGLE", null, [i]));
  } else if (mode.kind === "ACCUMULATOR") {
    bets.push(one("ACCUMULATOR", null, [...Array(n).keys()]));
  } else {
    bets.push(one("SYSTEM", mode.system, [...Array(n).keys()]));
  }
  return {
    bets,
    lines: bets.reduce((sum, bet) => sum + bet.lines, 0),
    totalStake: bets.reduce((sum, bet) => sum + bet.totalStake, 0n),
    potentialReturn: bets.reduce((sum, bet) => sum + bet.potentialReturn, 0n),
  };
}
