/**
 * The store's stream handling without a server: the request-n window, price moves,
 * feed health, and which prices count as confirmed after a reconnect.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { MarketSnapshot, OddsFrame } from "../net/wire";
import { ODDS_WINDOW, Store, rejectionReason } from "./store";

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
