import { useCallback, useMemo, useState } from "react";
import { useStore } from "../state/context";
import type { MarketView } from "../state/store";
import { MarketPrices } from "./MarketPrices";
import { formatTime, sportName } from "./format";

/** Sports and events with their live prices. */
export function EventsView() {
  const store = useStore();
  const [sport, setSport] = useState<string>("all");
  const sports = useMemo(() => [...new Set(store.events.map((e) => e.sport))].sort(), [store.events]);
  const events = store.events.filter((e) => sport === "all" || e.sport === sport);
  const blockedOf = useCallback((market: MarketView, selectionId: string) => store.selectionBlocked(market, selectionId), [store]);
  const onToggle = useCallback((m: string, s: string) => store.toggleLeg(m, s), [store]);
  const slipKeysOf = (marketId: string) =>
    store.slip.legs
      .filter((l) => l.marketId === marketId)
      .map((l) => l.selectionId)
      .join("|");

  return (
    <section aria-labelledby="events-heading" className="events">
      <h1 id="events-heading">Sports</h1>
      <div className="chips" role="group" aria-label="Filter by sport">
        {["all", ...sports].map((s) => (
          <button key={s} type="button" className="chip" aria-pressed={sport === s} onClick={() => setSport(s)}>
            {s === "all" ? "All sports" : sportName(s)}
          </button>
        ))}
      </div>
      {events.length === 0 && <p className="muted">{store.conn === "live" ? "No events right now." : "Loading events…"}</p>}
      <ul className="event-list">
        {events.map((event) => (
          <li key={event.eventId} className="event-card" data-event={event.eventId}>
            <div className="event-head">
              <h2 className="event-name">{event.name}</h2>
              <span className="event-meta">
                {sportName(event.sport)} · {formatTime(event.startTime)}
              </span>
            </div>
            {event.markets.map((entry) => {
              const market = store.markets.get(entry.marketId);
              return (
                <div key={entry.marketId} className="market-row">
                  <div className="market-row-head">
                    <a href={`#/market/${entry.marketId}`} className="market-link">
                      {entry.name}
                      {market && market.selections.length > 3 ? ` — all ${market.selections.length} selections` : ""}
                    </a>
                    {market && <StatusBadges market={market} />}
                  </div>
                  {market ? (
                    <MarketPrices
                      market={market}
                      format={store.oddsFormat}
                      stale={store.marketStale(market)}
                      slipKeys={slipKeysOf(market.marketId)}
                      blockedOf={blockedOf}
                      onToggle={onToggle}
                      limit={3}
                      showNames
                    />
                  ) : (
                    <p className="muted">Waiting for prices…</p>
                  )}
                </div>
              );
            })}
          </li>
        ))}
      </ul>
    </section>
  );
}

export function StatusBadges({ market }: { market: MarketView }) {
  return (
    <span className="badges">
      {market.inPlay && <span className="badge live">In play</span>}
      {market.status !== "OPEN" && <span className={`badge status-${market.status.toLowerCase()}`}>{market.status.toLowerCase()}</span>}
      {market.eachWay && (
        <span className="badge ew" title="Each-way terms">
          E/W {market.eachWay.fraction} · {market.eachWay.places} places
        </span>
      )}
    </span>
  );
}
