import { useCallback } from "react";
import { displayWire } from "../lib/odds";
import { useStore } from "../state/context";
import type { MarketView as Market } from "../state/store";
import { StatusBadges } from "./EventsView";
import { PriceButton } from "./PriceButton";
import { formatTime, sportName } from "./format";

/** One market: every selection with its live price. */
export function MarketView({ marketId }: { marketId: string }) {
  const store = useStore();
  const market = store.markets.get(marketId);
  const onToggle = useCallback((m: string, s: string) => store.toggleLeg(m, s), [store]);
  if (!market) {
    return (
      <section className="market-view">
        <p>
          <a href="#/">← All sports</a>
        </p>
        <p className="muted">{store.conn === "live" ? `Market ${marketId} is not available.` : "Loading market…"}</p>
      </section>
    );
  }
  const stale = store.marketStale(market);
  return (
    <section className="market-view" aria-labelledby="market-heading" data-market-view={market.marketId}>
      <p>
        <a href="#/">← All sports</a>
      </p>
      <h1 id="market-heading">
        {market.eventName} — {market.name}
      </h1>
      <p className="event-meta">
        {sportName(market.sport)} · {formatTime(market.startTime)} <StatusBadges market={market} />
        {market.betDelayMs > 0 && <span className="badge">bet delay {Math.round(market.betDelayMs / 1000)} s</span>}
      </p>
      {market.eachWay && (
        <p className="muted">
          Each-way offered: places 1–{market.eachWay.places} paid at {market.eachWay.fraction} of the odds.
        </p>
      )}
      <table className="selections">
        <caption className="sr-only">Selections and prices for {market.name}</caption>
        <thead>
          <tr>
            <th scope="col">Selection</th>
            <th scope="col">Status</th>
            <th scope="col">Price ({store.oddsFormat})</th>
          </tr>
        </thead>
        <tbody>
          {market.selections.map((s) => (
            <tr key={s.selectionId} data-selection-row={s.selectionId}>
              <th scope="row">
                {s.name}
                {s.handicap !== null && <span className="muted"> ({s.handicap})</span>}
              </th>
              <td>{s.status === "ACTIVE" ? "" : s.status.toLowerCase()}</td>
              <td>
                {s.status === "ACTIVE" ? (
                  <PriceButton
                    marketId={market.marketId}
                    selection={s}
                    format={store.oddsFormat}
                    blocked={store.selectionBlocked(market, s.selectionId)}
                    stale={stale}
                    inSlip={store.inSlip(market.marketId, s.selectionId)}
                    onToggle={onToggle}
                  />
                ) : (
                  <span className="muted">{displayWire(s.price, store.oddsFormat)}</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export type { Market };
