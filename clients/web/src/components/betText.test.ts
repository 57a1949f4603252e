/** My Bets' words: a rejected bet's stake and reason, a correction's note, a leg's names. */
import { describe, expect, it } from "vitest";
import type { Receipt } from "../net/wire";
import { askedStake, legText, rejectedText, resettledNote, stakeText } from "./betText";
import { receipt } from "./receipt.fixture";

/** As rsocket_server/betting.py sends a bet refused after its in-play delay: lines 0, totalStake 0. */
function refusedAfterDelay(patch: Partial<Receipt>): Receipt {
  return receipt({
    status: "REJECTED",
    code: "PRICE_CHANGED",
    message: "price moved",
    lines: 0,
    totalStake: 0,
    potentialReturn: 0,
    ...patch,
  });
}

const legs = (n: number) => Array.from({ length: n }, (_, i) => ({ marketId: `1.${i}`, selectionId: `${i}`, price: "2", result: null }));

describe("a rejected bet's stake (never £0.00)", () => {
  it("is the stake asked, from stakePerLine, when the receipt's totalStake is 0", () => {
    expect(stakeText(refusedAfterDelay({ stakePerLine: 500 }))).toBe("£5.00, refunded");
    expect(askedStake(refusedAfterDelay({ stakePerLine: 500 }))).toEqual({ total: 500n, perLine: 500n, lines: 1 });
  });

  it("counts the lines from the bet's shape: each-way single 2, Yankee 11, each-way Lucky 15 30", () => {
    expect(stakeText(refusedAfterDelay({ stakePerLine: 250, eachWay: true }))).toBe("£5.00 (2 × £2.50), refunded");
    expect(stakeText(refusedAfterDelay({ type: "SYSTEM", system: "YANKEE", legs: legs(4), stakePerLine: 100 }))).toBe(
      "£11.00 (11 × £1.00), refunded",
    );
    expect(stakeText(refusedAfterDelay({ type: "SYSTEM", system: "LUCKY15", legs: legs(4), eachWay: true, stakePerLine: 10 }))).toBe(
      "£3.00 (30 × £0.10), refunded",
    );
    expect(stakeText(refusedAfterDelay({ type: "ACCUMULATOR", legs: legs(3), stakePerLine: 123456789 }))).toBe("£1,234,567.89, refunded");
  });

  it("keeps the receipt's own total when it has one (a PENDING bet refused at settlement)", () => {
    const bet = receipt({ status: "REJECTED", code: "MARKET_CLOSED", lines: 2, stakePerLine: 500, totalStake: 1000, eachWay: true });
    expect(stakeText(bet)).toBe("£10.00 (2 × £5.00), refunded");
  });

  it("says per line when the shape cannot be counted, and 'not recorded' when there is no stake at all", () => {
    expect(stakeText(refusedAfterDelay({ type: "SYSTEM", system: "YANKEE", legs: legs(2), stakePerLine: 100 }))).toBe("£1.00 a line, refunded");
    expect(stakeText(refusedAfterDelay({ stakePerLine: 0 }))).toBe("not recorded");
  });

  it("leaves other bets' stakes as they were", () => {
    expect(stakeText(receipt({}))).toBe("£5.00");
    expect(stakeText(receipt({ type: "SYSTEM", system: "TRIXIE", legs: legs(3), lines: 4, stakePerLine: 100, totalStake: 400 }))).toBe("£4.00 (4 × £1.00)");
  });
});

describe("a rejected bet's reason", () => {
  it("is in words, with the server's message and its code", () => {
    const bet = receipt({
      status: "REJECTED",
      code: "MARKET_CLOSED",
      message: "the market was settled before the bet's in-play delay ended",
    });
    expect(rejectedText(bet)).toBe("The market has closed. — the market was settled before the bet's in-play delay ended (MARKET_CLOSED)");
  });

  it("gives the current price for PRICE_CHANGED in the chosen format", () => {
    const bet = refusedAfterDelay({
      message: null,
      details: { prices: [{ marketId: "1.145405534", selectionId: "110503", price: "2", requested: "1.76" }] },
    });
    expect(rejectedText(bet, "decimal")).toBe("The price changed. — now 2.00 (you asked for 1.76) (PRICE_CHANGED)");
  });
});

describe("a resettled bet's note", () => {
  it("says what it returned before the correction", () => {
    const bet = receipt({
      status: "SETTLED",
      settlement: { return: 0, settledAt: "2026-12-03T19:00:00Z", resettled: true, previousReturn: 1960 },
    });
    expect(resettledNote(bet)).toBe("Resettled (was £19.60)");
    expect(resettledNote({ ...bet, settlement: { return: 1960, settledAt: "x", resettled: true, previousReturn: 0 } })).toBe("Resettled (was £0.00)");
    expect(resettledNote({ ...bet, settlement: { return: 1960, settledAt: "x", resettled: true } })).toBe("Resettled");
  });

  it("is absent for a bet settled once", () => {
    expect(resettledNote(receipt({ status: "SETTLED", settlement: { return: 880, settledAt: "x" } }))).toBeNull();
    expect(resettledNote(receipt({}))).toBeNull();
  });
});

describe("a leg's names", () => {
  const leg = { marketId: "1.145405534", selectionId: "110503", price: "1.76", result: null };

  it("names the selection, market and event when known", () => {
    expect(legText(leg, { selection: "Frankel", market: "2m Hcap", event: "Ascot 14:30", source: "lookup" })).toEqual({
      selection: "Frankel @ 1.76",
      market: "2m Hcap · Ascot 14:30",
    });
    expect(legText({ ...leg, price: "3", result: "WIN" }, { selection: "Frankel", market: "2m Hcap", event: "Ascot 14:30", source: "live" }, "fractional")).toEqual({
      selection: "Frankel @ 2/1",
      market: "2m Hcap · Ascot 14:30 · win",
    });
  });

  it("labels ids as ids, and says whether the name is coming or unavailable", () => {
    expect(legText(leg, { selection: null, market: "2m Hcap", event: "Ascot 14:30", source: "catalogue" })).toEqual({
      selection: "Selection 110503 @ 1.76",
      market: "2m Hcap · Ascot 14:30",
    });
    expect(legText(leg, { selection: null, market: null, event: null, source: "looking" })).toEqual({
      selection: "Selection 110503 @ 1.76",
      market: "Market 1.145405534 (looking up its name…)",
    });
    expect(legText(leg, { selection: null, market: null, event: null, source: "missing" })).toEqual({
      selection: "Selection 110503 @ 1.76",
      market: "Market 1.145405534 (not listed by the server now; name unavailable)",
    });
    expect(legText(leg, { selection: null, market: null, event: null, source: "unknown" })).toEqual({
      selection: "Selection 110503 @ 1.76",
      market: "Market 1.145405534",
    });
  });
});
