import { describe, expect, it } from "vitest";
import { formatMoney, parseStake } from "./money";

describe("money in minor units", () => {
  it("formats without floats", () => {
    expect(formatMoney(100000n, "GBP")).toBe("£1,000.00");
    expect(formatMoney(99100, "GBP")).toBe("£991.00");
    expect(formatMoney(5, "GBP")).toBe("£0.05");
    expect(formatMoney(-250, "EUR")).toBe("−€2.50");
    expect(formatMoney(1234567890123456789n, "GBP")).toBe("£12,345,678,901,234,567.89");
    expect(formatMoney(500, "JPY")).toBe("500 JPY");
  });
  it("parses a typed stake into minor units", () => {
    expect(parseStake("5")).toBe(500n);
    expect(parseStake("5.5")).toBe(550n);
    expect(parseStake("0.10")).toBe(10n);
    expect(parseStake("£1,000.01")).toBe(100001n);
    expect(parseStake("19.99")).toBe(1999n);
    for (const bad of ["", "-1", "1e3", "1.234", "abc", "NaN", "Infinity"]) expect(parseStake(bad)).toBeNull();
  });
});
