/**
 * The slip's arithmetic against the server's (expected numbers from
 * tests/unit/core/test_bets.py and tests/acceptance/test_b07_odds_conversion.py).
 */
import { describe, expect, it } from "vitest";
import { Frac } from "./fraction";
import { parsePrice, type Price } from "./odds";
import {
  type EachWayTerms,
  type SystemBet,
  ALL_SYSTEMS,
  combinedOdds,
  expandLines,
  lineCount,
  modesFor,
  parseEachWay,
  placeOdds,
  potentialReturn,
  shapeProblem,
  summarise,
  systemAccepts,
} from "./slip";

const QUARTER: EachWayTerms = { places: 3, fraction: Frac.of(1, 4) };
const FIFTH: EachWayTerms = { places: 3, fraction: Frac.of(1, 5) };
const prices = (...texts: string[]): Price[] => texts.map(parsePrice);

describe("RULES.md §4 line counts of every system bet", () => {
  const table: [SystemBet, number, number][] = [
    ["DOUBLES", 4, 6],
    ["DOUBLES", 2, 1],
    ["TREBLES", 4, 4],
    ["TREBLES", 5, 10],
    ["TRIXIE", 3, 4],
    ["PATENT", 3, 7],
    ["YANKEE", 4, 11],
    ["LUCKY15", 4, 15],
    ["CANADIAN", 5, 26],
    ["LUCKY31", 5, 31],
    ["HEINZ", 6, 57],
    ["LUCKY63", 6, 63],
    ["SUPER_HEINZ", 7, 120],
    ["GOLIATH", 8, 247],
  ];
  it.each(table)("%s of %i is %i bets", (system, n, bets) => {
    expect(lineCount("SYSTEM", system, n, false)).toBe(bets);
    expect(expandLines("SYSTEM", system, n, false)).toHaveLength(bets);
  });
  it("covers every system", () => {
    expect(new Set(table.map(([s]) => s))).toEqual(new Set(ALL_SYSTEMS));
  });

  const eachWay: [SystemBet, number, number, bigint][] = [
    ["DOUBLES", 3, 6, 600n],
    ["TRIXIE", 3, 8, 800n],
    ["YANKEE", 4, 22, 2200n],
    ["LUCKY15", 4, 30, 3000n],
    ["GOLIATH", 8, 494, 49400n],
  ];
  it.each(eachWay)("each-way %s of %i is %i lines, total stake %s at 100 a line", (system, n, lines, stake) => {
    const summary = summarise({ kind: "SYSTEM", system }, prices(...Array(n).fill("2")), 100n, true, Array(n).fill(QUARTER));
    expect(summary.lines).toBe(lines);
    expect(summary.totalStake).toBe(stake);
    const expanded = expandLines("SYSTEM", system, n, true);
    expect(expanded.slice(0, 2).map((l) => l.place)).toEqual([false, true]);
  });

  it("content by fold size: Heinz = 15 + 20 + 15 + 6 + 1", () => {
    const counted: Record<number, number> = {};
    for (const line of expandLines("SYSTEM", "HEINZ", 6, false)) counted[line.legs.length] = (counted[line.legs.length] ?? 0) + 1;
    expect(counted).toEqual({ 2: 15, 3: 20, 4: 15, 5: 6, 6: 1 });
  });

  it("selection counts each system takes", () => {
    expect(systemAccepts("DOUBLES", 2)).toBe(true);
    expect(systemAccepts("DOUBLES", 1)).toBe(false);
    expect(systemAccepts("DOUBLES", 21)).toBe(false);
    expect(systemAccepts("LUCKY15", 4)).toBe(true);
    expect(systemAccepts("LUCKY15", 5)).toBe(false);
    expect(shapeProblem("SYSTEM", "TRIXIE", 2)).toBe("TRIXIE needs 3 selections, got 2");
    expect(shapeProblem("SYSTEM", "DOUBLES", 1)).toBe("DOUBLES needs 2+ selections, got 1");
    expect(shapeProblem("SINGLE", null, 2)).toBe("a SINGLE has exactly 1 leg, got 2");
    expect(shapeProblem("ACCUMULATOR", null, 1)).toBe("an ACCUMULATOR needs at least 2 legs, got 1");
  });

  it("offers the modes a slip of n legs can be", () => {
    expect(modesFor(1).map((m) => m.kind)).toEqual(["SINGLES"]);
    const four = modesFor(4).map((m) => (m.kind === "SYSTEM" ? m.system : m.kind));
    expect(four).toEqual(["SINGLES", "ACCUMULATOR", "DOUBLES", "TREBLES", "YANKEE", "LUCKY15"]);
  });
});

describe("potential returns, to the penny (rounded down once)", () => {
  it("single 1000 at 2.5 returns 2500 (PROTOCOL.md receipt example)", () => {
    const summary = summarise({ kind: "SINGLES" }, prices("2.5"), 1000n, false);
    expect(summary).toMatchObject({ lines: 1, totalStake: 1000n, potentialReturn: 2500n });
  });

  it("Yankee at 2, 5/2, 1.5, 4 with 100 a line returns 15675", () => {
    const lines = expandLines("SYSTEM", "YANKEE", 4, false);
    const quoted = prices("2", "5/2", "1.5", "4");
    expect(combinedOdds(lines, quoted).eq(Frac.of(627, 4))).toBe(true);
    expect(potentialReturn(lines, quoted, 100n)).toBe(15675n);
    expect(summarise({ kind: "SYSTEM", system: "YANKEE" }, quoted, 100n, false)).toMatchObject({
      lines: 11,
      totalStake: 1100n,
      potentialReturn: 15675n,
    });
  });

  it("each-way single, 10 at 10/1 with 1/5 terms: 110 + 30 = 140.00", () => {
    const summary = summarise({ kind: "SINGLES" }, prices("10/1"), 1000n, true, [FIFTH]);
    expect(summary).toMatchObject({ lines: 2, totalStake: 2000n, potentialReturn: 14000n });
  });

  it("each-way Yankee at quarter terms: 160383/1024 per unit → 18451", () => {
    const lines = expandLines("SYSTEM", "YANKEE", 4, true);
    const quoted = prices("2", "5/2", "1.5", "4");
    const terms = Array(4).fill(QUARTER);
    expect(combinedOdds(lines, quoted, terms).eq(Frac.of(627, 4).add(Frac.of(28431, 1024)))).toBe(true);
    expect(potentialReturn(lines, quoted, 100n, terms)).toBe(18451n);
  });

  it("place odds are 1 + (O−1)·fraction", () => {
    expect(placeOdds(parsePrice("11"), FIFTH).eq(Frac.of(3))).toBe(true);
    expect(placeOdds(parsePrice("5/1"), QUARTER).eq(Frac.of(9, 4))).toBe(true);
    expect(placeOdds(parsePrice("17"), QUARTER).eq(Frac.of(5))).toBe(true);
    expect(placeOdds(parsePrice("2.1"), FIFTH).eq(Frac.of(122, 100))).toBe(true);
    expect(placeOdds(parsePrice("7/2"), FIFTH).eq(Frac.of(17, 10))).toBe(true);
  });

  it("a place line without terms is refused", () => {
    expect(() => potentialReturn([{ legs: [0], place: true }], prices("3"), 100n, [null])).toThrow(/no each-way terms/);
  });

  it("fractional prices stay exact through a multiple: 300 on 1/3 × 1/3 → 533", () => {
    expect(summarise({ kind: "ACCUMULATOR" }, prices("1/3", "1/3"), 300n, false).potentialReturn).toBe(533n);
  });

  it("rounds down once at the end, not per line: 1 each-way at 3.5, 1/5 terms → 5", () => {
    const lines = expandLines("SINGLE", null, 1, true);
    expect(potentialReturn(lines, prices("3.5"), 1n, [FIFTH])).toBe(5n);
    const perLine = lines.reduce((sum, line) => sum + potentialReturn([line], prices("3.5"), 1n, [FIFTH]), 0n);
    expect(perLine).toBe(4n);
  });

  it("rounds down, never up: 7 at 1.99 → 13", () => {
    expect(potentialReturn([{ legs: [0], place: false }], prices("1.99"), 7n)).toBe(13n);
  });

  it("singles are separate bets, each rounded down on its own", () => {
    // 7 at 1.99 (13.93 → 13) twice: 26, not floor(27.86) = 27.
    const summary = summarise({ kind: "SINGLES" }, prices("1.99", "1.99"), 7n, false);
    expect(summary).toMatchObject({ lines: 2, totalStake: 14n, potentialReturn: 26n });
    expect(summary.bets).toHaveLength(2);
  });

  it("B07: +150 is 2.50 (2500), -200 is 1.50 (1500), -110 is 21/11 (1909), 5/2 is 3.50, 1/3 × 300 = 400", () => {
    expect(potentialReturn([{ legs: [0], place: false }], prices("2.5"), 1000n)).toBe(2500n);
    expect(potentialReturn([{ legs: [0], place: false }], prices("1.5"), 1000n)).toBe(1500n);
    expect(potentialReturn([{ legs: [0], place: false }], prices("10/11"), 1000n)).toBe(1909n);
    expect(potentialReturn([{ legs: [0], place: false }], prices("1.91"), 1000n)).toBe(1910n);
    expect(potentialReturn([{ legs: [0], place: false }], prices("5/2"), 1000n)).toBe(3500n);
    expect(potentialReturn([{ legs: [0], place: false }], prices("1/3"), 300n)).toBe(400n);
  });

  it("reads each-way terms from the wire", () => {
    const terms = parseEachWay({ places: 3, fraction: "1/4" });
    expect(terms?.places).toBe(3);
    expect(terms?.fraction.eq(Frac.of(1, 4))).toBe(true);
    expect(parseEachWay(null)).toBeNull();
  });
});
