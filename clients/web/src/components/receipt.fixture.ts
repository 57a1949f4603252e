/** A bet receipt for tests: an accepted £5.00 single at 1.76, overridden by `patch`. */
import type { Receipt } from "../net/wire";

export function receipt(patch: Partial<Receipt>): Receipt {
  return {
    betId: "B-000001",
    requestId: "r1",
    status: "ACCEPTED",
    code: null,
    message: null,
    placedAt: "2026-12-03T18:00:00Z",
    type: "SINGLE",
    system: null,
    eachWay: false,
    legs: [{ marketId: "1.145405534", selectionId: "110503", price: "1.76", result: null }],
    lines: 1,
    stakePerLine: 500,
    totalStake: 500,
    potentialReturn: 880,
    currency: "GBP",
    balanceAfter: 9500,
    settlement: null,
    ...patch,
  };
}
