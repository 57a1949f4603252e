/** Odds display, ported from sportsbook_core/odds_formats.py (cases from its tests and B07). */
import { describe, expect, it } from "vitest";
import { Frac } from "./fraction";
import { display, displayAmerican, displayDecimal, displayFractional, displayWire, parseOdds, parsePrice, comparePrices } from "./odds";

const F = (n: number, d = 1) => Frac.of(n, d);

describe("FIELD_CASES B07 odds conversion", () => {
  it("+150 is decimal 2.50, not 1.50", () => {
    const odds = parseOdds("+150", "american");
    expect(odds.eq(F(5, 2))).toBe(true);
    expect(displayDecimal(odds)).toBe("2.50");
  });
  it("-200 is decimal 1.50, not 0.50", () => {
    const odds = parseOdds("-200", "american");
    expect(odds.eq(F(3, 2))).toBe(true);
    expect(displayDecimal(odds)).toBe("1.50");
  });
  it("-110 is exactly 21/11, displayed 1.91", () => {
    const odds = parseOdds("-110", "american");
    expect(odds.eq(F(21, 11))).toBe(true);
    expect(displayDecimal(odds)).toBe("1.91");
  });
  it("fractional 5/2 is decimal 3.50; 1/3 is 4/3", () => {
    expect(display(parsePrice("5/2"), "decimal")).toBe("3.50");
    expect(parseOdds("1/3", "fractional").eq(F(4, 3))).toBe(true);
  });
  it("1.91 displays as American -110, 2.10 as +110", () => {
    expect(display(parsePrice("1.91"), "american")).toBe("-110");
    expect(display(parsePrice("2.1"), "american")).toBe("+110");
  });
});

describe("display", () => {
  it.each([
    [F(5, 2), "2.50"],
    [F(2), "2.00"],
    [F(1000), "1000.00"],
    [F(101, 100), "1.01"],
    [F(21, 11), "1.91"],
    [F(4, 3), "1.33"],
    [F(5, 3), "1.67"],
    [F(1005, 1000), "1.01"],
    [F(1004, 1000), "1.004"],
  ])("decimal %s → %s (2 dp half up, never 1.00)", (odds, text) => {
    expect(displayDecimal(odds)).toBe(text);
  });

  it.each([
    [F(191, 100), "-110"],
    [F(21, 10), "+110"],
    [F(5, 2), "+150"],
    [F(3, 2), "-200"],
    [F(2), "+100"],
    [F(21, 11), "-110"],
    [F(132, 100), "-313"],
    [F(1999, 1000), "-100"],
    [F(101, 100), "-10000"],
    [F(1000), "+99900"],
    [F(2005, 1000), "+101"],
  ])("american %s → %s (nearest, halves away from zero)", (odds, text) => {
    expect(displayAmerican(odds)).toBe(text);
  });

  it.each([
    ["2.5", "6/4"],
    ["1.91", "10/11"],
    ["2.1", "11/10"],
    ["1.67", "4/6"],
    ["3.4", "5/2"],
    ["2", "1/1"],
    ["1.01", "1/100"],
    ["501", "500/1"],
    ["1000", "999/1"],
    ["2/3", "4/6"],
    ["7/3", "7/3"],
    ["3/2", "6/4"],
  ])("fractional %s → %s (snap to the customary ladder unless priced fractionally)", (wire, text) => {
    expect(displayFractional(parsePrice(wire))).toBe(text);
  });

  it("a bare decimal 10/3 snaps to 9/4", () => {
    expect(displayFractional({ odds: F(10, 3), fractional: false })).toBe("9/4");
  });

  it("RULES.md §7 rows and the Asian formats", () => {
    expect(["1.5", "2.5", "3"].map((w) => display(parsePrice(w), "fractional"))).toEqual(["1/2", "6/4", "2/1"]);
    const p = parsePrice("2.5");
    expect(["decimal", "fractional", "american", "hongkong", "malay", "indonesian"].map((f) => display(p, f as never))).toEqual([
      "2.50",
      "6/4",
      "+150",
      "1.50",
      "-0.67",
      "1.50",
    ]);
    expect(display({ odds: F(251), fractional: false }, "malay")).toBe("-0.004");
    expect(display({ odds: F(101, 100), fractional: false }, "indonesian")).toBe("-100.00");
  });

  it("shows a missing price as a dash and compares prices exactly", () => {
    expect(displayWire(null, "decimal")).toBe("—");
    expect(displayWire("5/2", "american")).toBe("+250");
    expect(comparePrices("5/2", "3.5")).toBe(0);
    expect(comparePrices("1.91", "10/11")).toBe(1);
    expect(comparePrices("2", "2.02")).toBe(-1);
  });

  it("refuses what is not a wire price", () => {
    for (const bad of ["1", "0.5", "2.5e2", "abc", "0/1", "2,5", " 2.5"]) expect(() => parsePrice(bad)).toThrow();
  });
});
