/**
 * My Bets as rendered (react-dom/server, no browser): the tabs, a REJECTED card, a
 * resettled card, and legs on markets the app has no catalogue entry for. The
 * `[data-tab="SETTLED"]`, `.bet-card[data-bet-id][data-status]` and
 * `[data-settlement-return]` hooks are the browser test's (e2e/web-app.mjs).
 */
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { Receipt } from "../net/wire";
import { StoreContext } from "../state/context";
import { Store, type BetTab } from "../state/store";
import { BetCard, MyBets } from "./MyBets";
import { receipt } from "./receipt.fixture";

const rejected = receipt({
  betId: "B-000002",
  status: "REJECTED",
  code: "PRICE_CHANGED",
  message: "price moved during the in-play delay",
  details: { prices: [{ marketId: "1.145405534", selectionId: "110503", price: "2", requested: "1.76" }] },
  placedAt: "2026-12-03T18:00:02Z",
  lines: 0,
  totalStake: 0,
  potentialReturn: 0,
});

const settled = receipt({
  betId: "B-000003",
  status: "SETTLED",
  placedAt: "2026-12-03T18:00:03Z",
  legs: [{ marketId: "1.145405534", selectionId: "110503", price: "1.76", result: "LOSE" }],
  settlement: { return: 0, settledAt: "2026-12-03T19:00:00Z", legs: [{ result: "LOSE" }], resettled: true, previousReturn: 1960 },
});

const voided = receipt({
  betId: "B-000004",
  status: "VOID",
  placedAt: "2026-12-03T18:00:04Z",
  settlement: { return: 500, settledAt: "2026-12-03T19:00:00Z" },
});

function storeWith(bets: Receipt[]): Store {
  const store = new Store("ws://test/rsocket");
  store.token = "t";
  for (const bet of bets) store.bets.set(bet.betId!, bet);
  return store;
}

function render(store: Store, element: ReturnType<typeof createElement>): string {
  return renderToStaticMarkup(createElement(StoreContext.Provider, { value: store }, element));
}

const text = (html: string) => html.replace(/<[^>]+>/g, "").replace(/&#x27;/g, "'").replace(/&amp;/g, "&");

function listed(html: string): string[] {
  return [...html.matchAll(/class="bet-card[^"]*" data-bet-id="([^"]*)" data-status="([A-Z]+)"/g)].map((m) => `${m[1]}:${m[2]}`);
}

describe("My Bets", () => {
  const store = storeWith([receipt({}), rejected, settled, voided]);
  const page = (tab: BetTab) => render(store, createElement(MyBets, { initialTab: tab }));

  it("has Open, Settled and Rejected tabs, the rejected bet only under Rejected", () => {
    const html = page("SETTLED");
    expect([...html.matchAll(/data-tab="([A-Z]+)"/g)].map((m) => m[1])).toEqual(["OPEN", "SETTLED", "REJECTED"]);
    expect(html).toContain('aria-pressed="true" data-tab="SETTLED"');
    expect(listed(html)).toEqual(["B-000004:VOID", "B-000003:SETTLED"]);
    expect(listed(page("REJECTED"))).toEqual(["B-000002:REJECTED"]);
    expect(listed(page("OPEN"))).toEqual(["B-000001:ACCEPTED"]);
    expect(text(page("REJECTED"))).toContain("Bets refused after being held for the in-play delay. They were not settled; their stakes were refunded.");
    expect(text(render(storeWith([]), createElement(MyBets, { initialTab: "REJECTED" })))).toContain("No rejected bets.");
  });

  it("shows a REJECTED bet as rejected: badge, reason and code, the stake asked, no return", () => {
    const html = render(store, createElement(BetCard, { bet: rejected }));
    expect(html).toContain('<span class="badge status-rejected">rejected</span>');
    expect(html).toContain('<dt>Stake asked</dt><dd>£5.00, refunded</dd>');
    expect(html).toContain('data-reject-code="PRICE_CHANGED"');
    expect(text(html)).toContain("ReasonThe price changed. — price moved during the in-play delay — now 2.00 (you asked for 1.76) (PRICE_CHANGED)");
    expect(html).not.toContain("£0.00");
    expect(html).not.toContain("Returned");
    expect(html).not.toContain("data-settlement-return");
    expect(html).not.toContain("Potential return");
  });

  it("notes a resettled bet's previous return, keeping data-settlement-return the new one", () => {
    const html = render(store, createElement(BetCard, { bet: settled }));
    expect(html).toContain('data-bet-id="B-000003" data-status="SETTLED"');
    expect(html).toContain('<dd data-settlement-return="0">£0.00</dd>');
    expect(html).toContain('<p class="bet-note" data-resettled="1960">Resettled (was £19.60)</p>');
    const once = render(store, createElement(BetCard, { bet: { ...settled, settlement: { return: 1960, settledAt: "2026-12-03T19:00:00Z" } } }));
    expect(once).toContain('<dd data-settlement-return="1960">£19.60</dd>');
    expect(once).not.toContain("Resettled");
  });

  it("keeps the VOID card as it was", () => {
    const html = render(store, createElement(BetCard, { bet: voided }));
    expect(html).toContain('data-bet-id="B-000004" data-status="VOID"');
    expect(text(html)).toContain("Returned£5.00 (void)");
  });

  it("names a leg from a catalog.market lookup when the odds stream never gave its market", () => {
    const named = storeWith([settled]);
    named.marketNames.set("1.145405534", {
      marketId: "1.145405534",
      name: "2m Hcap",
      eventName: "Ascot 14:30",
      selections: new Map([["110503", "Frankel"]]),
    });
    expect(text(render(named, createElement(BetCard, { bet: settled })))).toContain("Frankel @ 1.76 2m Hcap · Ascot 14:30 · lose");
    const unknown = storeWith([settled]);
    unknown.marketNames.set("1.145405534", "missing");
    expect(text(render(unknown, createElement(BetCard, { bet: settled })))).toContain(
      "Selection 110503 @ 1.76 Market 1.145405534 (not listed by the server now; name unavailable) · lose",
    );
  });
});
