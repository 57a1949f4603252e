/**
 * The store's stream handling without a server: the request-n window, price moves,
 * feed health, and which prices count as confirmed after a reconnect.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { SportsbookError } from "../net/rsocket";
import type { MarketSnapshot, OddsFrame, Receipt } from "../net/wire";
import { MARKET_NAMES_MAX, NAME_LOOKUPS_AT_ONCE, ODDS_WINDOW, Store, betTab, rejectionReason } from "./store";

type Callbacks = { next(frame: OddsFrame): void; error(e: unknown): void; complete(): void };

function snapshot(marketId: string, price: string, seq = 1): MarketSnapshot {
  return {
    marketId,
    eventId: `e${marketId}`,
    eventName: `Event ${marketId}`,
    sport: "football",
    startTime: "2026-12-03T18:00:00.000Z",
    name: "Match Odds",
    type: "MATCH_ODDS",
    status: "OPEN",
    inPlay: false,
    betDelayMs: 0,
    eachWay: null,
    selections: [{ selectionId: "1", name: "Home", price, status: "ACTIVE", handicap: null }],
    seq,
    updatedAt: "2026-12-03T18:00:00.000Z",
  };
}

/** A fake connection that records the odds.stream request and the REQUEST_Ns. */
function fakeConnection() {
  const seen: { body?: unknown; initialN?: number; callbacks?: Callbacks; requested: number[] } = { requested: [] };
  const connection = {
    stream(_route: string, body: unknown, initialN: number, callbacks: Callbacks) {
      seen.body = body;
      seen.initialN = initialN;
      seen.callbacks = callbacks;
      return { request: (n: number) => seen.requested.push(n), cancel: () => undefined };
    },
  };
  return { connection, seen };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

type Internals = { subscribeOdds(c: unknown): void; conn: string };

describe("odds.stream in the store", () => {
  let store: Store;
  beforeEach(() => {
    (globalThis as { requestAnimationFrame?: (cb: () => void) => void }).requestAnimationFrame = (cb) => setTimeout(cb, 0);
    store = new Store("ws://test/rsocket");
    (store as unknown as Internals).conn = "live";
  });

  it("asks for a window of frames, and for more only after applying them", async () => {
    const { connection, seen } = fakeConnection();
    (store as unknown as Internals).subscribeOdds(connection);
    expect(seen.initialN).toBe(ODDS_WINDOW);
    expect(seen.body).toEqual({ resume: null });
    seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.2", "3"), clk: "e.2" });
    expect(seen.requested).toEqual([]); // nothing more until they are rendered
    await tick();
    expect(seen.requested).toEqual([2]);
    expect(store.markets.get("1.1")?.selections[0].price).toBe("2.5");
    expect(store.lastClk).toBe("e.2");
  });

  it("flashes up or down when a price moves, exactly (5/2 is 3.5: no move)", async () => {
    const { connection, seen } = fakeConnection();
    (store as unknown as Internals).subscribeOdds(connection);
    seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    seen.callbacks!.next({ kind: "delta", markets: [{ marketId: "1.1", seq: 2, changes: { selections: [{ selectionId: "1", price: "2.6" }] } }], clk: "e.2" });
    await tick();
    expect(store.markets.get("1.1")?.selections[0]).toMatchObject({ price: "2.6", move: "up", moves: 1 });
    seen.callbacks!.next({ kind: "delta", markets: [{ marketId: "1.1", seq: 3, changes: { selections: [{ selectionId: "1", price: "2.02" }] } }], clk: "e.3" });
    await tick();
    expect(store.markets.get("1.1")?.selections[0]).toMatchObject({ price: "2.02", move: "down", moves: 2 });
    expect(store.markets.get("1.1")?.seq).toBe(3);
  });

  it("is stale while the feed says it is unhealthy, and betting is blocked", async () => {
    const { connection, seen } = fakeConnection();
    (store as unknown as Internals).subscribeOdds(connection);
    seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    seen.callbacks!.next({ kind: "status", feedHealthy: false, reason: "bus unreachable", clk: "e.1" });
    await tick();
    expect(store.stale).toBe(true);
    expect(store.staleReason).toContain("bus unreachable");
    expect(store.selectionBlocked(store.markets.get("1.1"), "1")).toBe("Prices are stale");
    seen.callbacks!.next({ kind: "heartbeat", clk: "e.2", feedHealthy: true });
    await tick();
    expect(store.stale).toBe(false);
    expect(store.selectionBlocked(store.markets.get("1.1"), "1")).toBeNull();
  });

  it("after a reconnect, resumes from the last clk and trusts no old price until confirmed", async () => {
    const first = fakeConnection();
    (store as unknown as Internals).subscribeOdds(first.connection);
    first.seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    first.seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.2", "3"), clk: "e.2" });
    await tick();
    // The connection drops; a new one resubscribes (onConnected marks every market unconfirmed).
    for (const [id, m] of store.markets) store.markets.set(id, { ...m, fresh: false });
    const second = fakeConnection();
    (store as unknown as Internals).subscribeOdds(second.connection);
    expect(second.seen.body).toEqual({ resume: "e.2" });
    expect(store.marketStale(store.markets.get("1.1"))).toBe(true);
    // Resume not honoured (e.g. the server restarted): fresh snapshots, one market at a time.
    second.seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.6", 1), clk: "f.1" });
    second.seen.callbacks!.next({ kind: "heartbeat", clk: "f.1", feedHealthy: true });
    await tick();
    expect(store.marketStale(store.markets.get("1.1"))).toBe(false);
    expect(store.marketStale(store.markets.get("1.2"))).toBe(true); // never re-sent: not trusted
  });

  it("a resume the server honoured (a delta or heartbeat first) confirms every market", async () => {
    const first = fakeConnection();
    (store as unknown as Internals).subscribeOdds(first.connection);
    first.seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    first.seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.2", "3"), clk: "e.2" });
    await tick();
    for (const [id, m] of store.markets) store.markets.set(id, { ...m, fresh: false });
    const second = fakeConnection();
    (store as unknown as Internals).subscribeOdds(second.connection);
    second.seen.callbacks!.next({ kind: "delta", markets: [{ marketId: "1.1", seq: 2, changes: { selections: [{ selectionId: "1", price: "2.4" }] } }], clk: "e.3" });
    await tick();
    expect(store.marketStale(store.markets.get("1.1"))).toBe(false);
    expect(store.marketStale(store.markets.get("1.2"))).toBe(false);
  });
});

describe("rejection reasons", () => {
  it("say why, with the current price in the chosen format", () => {
    const text = rejectionReason(
      {
        betId: null,
        requestId: "r",
        status: "REJECTED",
        code: "PRICE_CHANGED",
        message: "price changed on 1.1/1",
        details: { prices: [{ marketId: "1.1", selectionId: "1", price: "3", requested: "2.5" }] },
        placedAt: "",
        type: "SINGLE",
        system: null,
        eachWay: false,
        legs: [],
        lines: 1,
        stakePerLine: 100,
        totalStake: 100,
        potentialReturn: 250,
        currency: "GBP",
        balanceAfter: null,
        settlement: null,
      },
      "fractional",
    );
    expect(text).toContain("The price changed.");
    expect(text).toContain("now 2/1 (you asked for 6/4)");
  });
});

// ---- My Bets: tabs and names for markets the odds stream has not given ----------------

function bet(betId: string, status: Receipt["status"], legs: [string, string][], placedAt = "2026-12-03T18:00:00Z"): Receipt {
  return {
    betId,
    requestId: `r-${betId}`,
    status,
    code: status === "REJECTED" ? "MARKET_CLOSED" : null,
    message: null,
    placedAt,
    type: legs.length > 1 ? "ACCUMULATOR" : "SINGLE",
    system: null,
    eachWay: false,
    legs: legs.map(([marketId, selectionId]) => ({ marketId, selectionId, price: "2", result: null })),
    lines: 1,
    stakePerLine: 100,
    totalStake: 100,
    potentialReturn: 200,
    currency: "GBP",
    balanceAfter: null,
    settlement: null,
  };
}

/** A fake connection answering catalog.market from `known`, NOT_FOUND otherwise (or `fail` for an id). */
function namesConnection(known: MarketSnapshot[], fail: Record<string, string> = {}) {
  const asked: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const connection = {
    async request<T>(route: string, body: { marketId: string }): Promise<T> {
      expect(route).toBe("catalog.market");
      asked.push(body.marketId);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await tick();
      inFlight--;
      if (fail[body.marketId]) throw new SportsbookError(fail[body.marketId], "nope");
      const market = known.find((m) => m.marketId === body.marketId);
      if (!market) throw new SportsbookError("NOT_FOUND", `no market '${body.marketId}'`);
      return market as T;
    },
  };
  return { connection, asked, maxInFlight: () => maxInFlight };
}

describe("My Bets tabs", () => {
  it("lists REJECTED bets on their own tab, not under Settled", () => {
    expect([betTab("PENDING"), betTab("ACCEPTED"), betTab("SETTLED"), betTab("VOID"), betTab("REJECTED")]).toEqual([
      "OPEN",
      "OPEN",
      "SETTLED",
      "SETTLED",
      "REJECTED",
    ]);
    const store = new Store("ws://test/rsocket");
    store.bets.set("B1", bet("B1", "SETTLED", [["1.1", "1"]], "2026-12-03T18:00:01Z"));
    store.bets.set("B2", bet("B2", "REJECTED", [["1.1", "1"]], "2026-12-03T18:00:02Z"));
    store.bets.set("B3", bet("B3", "VOID", [["1.1", "1"]], "2026-12-03T18:00:03Z"));
    store.bets.set("B4", bet("B4", "ACCEPTED", [["1.1", "1"]], "2026-12-03T18:00:04Z"));
    expect(store.betsNewestFirst("SETTLED").map((b) => b.betId)).toEqual(["B3", "B1"]);
    expect(store.betsNewestFirst("REJECTED").map((b) => b.betId)).toEqual(["B2"]);
    expect(store.betsNewestFirst("OPEN").map((b) => b.betId)).toEqual(["B4"]);
    store.openCursor = "o";
    store.settledCursor = "s";
    expect([store.cursorFor("OPEN"), store.cursorFor("SETTLED"), store.cursorFor("REJECTED")]).toEqual(["o", "s", "s"]);
  });
});

describe("names for My Bets", () => {
  let store: Store;
  beforeEach(() => {
    (globalThis as { requestAnimationFrame?: (cb: () => void) => void }).requestAnimationFrame = (cb) => setTimeout(cb, 0);
    store = new Store("ws://test/rsocket");
  });

  it("looks up with catalog.market only the markets the odds stream has not named", async () => {
    const { connection: odds, seen } = fakeConnection();
    (store as unknown as Internals).subscribeOdds(odds);
    seen.callbacks!.next({ kind: "snapshot", market: snapshot("1.1", "2.5"), clk: "e.1" });
    await tick();
    store.bets.set("B1", bet("B1", "SETTLED", [["1.1", "1"]]));
    store.bets.set("B2", bet("B2", "SETTLED", [["1.145405534", "110503"], ["1.9", "7"]]));
    const gone = { ...snapshot("1.145405534", "1.76"), eventName: "Ascot 14:30", name: "2m Hcap" };
    gone.selections = [{ selectionId: "110503", name: "Frankel", price: null, status: "WINNER", handicap: null }];
    const { connection, asked } = namesConnection([gone]);
    expect(store.unnamedBetMarkets()).toEqual(["1.145405534", "1.9"]);
    const lookup = store.lookUpMarketNames(connection);
    expect(store.legNames("1.145405534", "110503")).toEqual({ selection: null, market: null, event: null, source: "looking" });
    await lookup;
    expect(asked.sort()).toEqual(["1.145405534", "1.9"]);
    expect(store.legNames("1.1", "1")).toEqual({ selection: "Home", market: "Match Odds", event: "Event 1.1", source: "live" });
    expect(store.legNames("1.145405534", "110503")).toEqual({ selection: "Frankel", market: "2m Hcap", event: "Ascot 14:30", source: "lookup" });
    expect(store.legNames("1.9", "7")).toEqual({ selection: null, market: null, event: null, source: "missing" });
    // Nothing is asked twice: found and missing markets are both remembered.
    expect(store.unnamedBetMarkets()).toEqual([]);
    await store.lookUpMarketNames(connection);
    expect(asked).toHaveLength(2);
  });

  it("falls back to the catalogue's market name, and asks again after a transient failure", async () => {
    store.events = [
      { eventId: "e", name: "Arsenal v Spurs", sport: "football", competition: null, country: null, startTime: "", inPlay: false, markets: [{ marketId: "1.5", name: "Match Odds", type: "MATCH_ODDS", status: "OPEN" }] },
    ];
    store.bets.set("B1", bet("B1", "ACCEPTED", [["1.5", "3"]]));
    store.bets.set("B2", bet("B2", "ACCEPTED", [["1.6", "4"]]));
    expect(store.legNames("1.5", "3")).toEqual({ selection: null, market: "Match Odds", event: "Arsenal v Spurs", source: "catalogue" });
    const first = namesConnection([], { "1.5": "RATE_LIMITED", "1.6": "CONNECTION" });
    await store.lookUpMarketNames(first.connection);
    expect(store.legNames("1.6", "4").source).toBe("unknown");
    const second = namesConnection([{ ...snapshot("1.6", "2"), name: "Total Goals", eventName: "Chelsea v Leeds" }]);
    await store.lookUpMarketNames(second.connection);
    expect(second.asked.sort()).toEqual(["1.5", "1.6"]);
    expect(store.legNames("1.6", "1")).toEqual({ selection: "Home", market: "Total Goals", event: "Chelsea v Leeds", source: "lookup" });
    expect(store.legNames("1.6", "4")).toEqual({ selection: null, market: "Total Goals", event: "Chelsea v Leeds", source: "lookup" });
  });

  it("asks a few at a time, for the newest bets' markets, and keeps at most MARKET_NAMES_MAX", async () => {
    const at = (i: number) => `2026-12-03T${String(10 + Math.floor(i / 3600)).padStart(2, "0")}:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}Z`;
    const ids = Array.from({ length: MARKET_NAMES_MAX + 10 }, (_, i) => `2.${i}`);
    ids.forEach((id, i) => store.bets.set(`B${i}`, bet(`B${i}`, "SETTLED", [[id, "1"]], at(i))));
    const names = namesConnection(ids.map((id) => snapshot(id, "2")).concat(Array.from({ length: 10 }, (_, i) => snapshot(`3.${i}`, "2"))));
    await store.lookUpMarketNames(names.connection);
    expect(names.maxInFlight()).toBe(NAME_LOOKUPS_AT_ONCE);
    expect(names.asked).toHaveLength(MARKET_NAMES_MAX);
    expect(store.marketNames.size).toBe(MARKET_NAMES_MAX);
    expect(store.marketNames.has(ids[ids.length - 1])).toBe(true); // the newest bet's market
    expect(store.marketNames.has(ids[9])).toBe(false); // beyond the bound: the oldest bets show ids
    expect(store.legNames(ids[9], "1").source).toBe("unknown");
    await store.lookUpMarketNames(names.connection);
    expect(names.asked).toHaveLength(MARKET_NAMES_MAX); // no churn: nothing asked again
    // Ten newer bets on new markets: their names in, the ten oldest bets' markets out.
    for (let i = 0; i < 10; i++) store.bets.set(`N${i}`, bet(`N${i}`, "ACCEPTED", [[`3.${i}`, "1"]], at(MARKET_NAMES_MAX + 10 + i)));
    await store.lookUpMarketNames(names.connection);
    expect(names.asked).toHaveLength(MARKET_NAMES_MAX + 10);
    expect(store.marketNames.size).toBe(MARKET_NAMES_MAX);
    expect(store.marketNames.has("3.0")).toBe(true);
    expect(store.marketNames.has(ids[10])).toBe(false);
    expect(store.marketNames.has(ids[19])).toBe(false);
    expect(store.marketNames.has(ids[20])).toBe(true);
  });
});

describe("names after a reconnect", () => {
  it("asks again for markets the last server did not know, keeps the names it found", async () => {
    const store = new Store("ws://test/rsocket");
    store.marketNames.set("1.7", "missing");
    store.marketNames.set("1.8", { marketId: "1.8", name: "Match Odds", eventName: "A v B", selections: new Map([["1", "A"]]) });
    const connection = {
      stream: () => ({ request: () => undefined, cancel: () => undefined }),
      request: async <T,>(route: string): Promise<T> => {
        expect(route).toBe("catalog.events");
        return { events: [] } as T;
      },
    };
    await (store as unknown as { onConnected(c: unknown): Promise<void> }).onConnected(connection);
    expect([...store.marketNames.keys()]).toEqual(["1.8"]);
  });
});
