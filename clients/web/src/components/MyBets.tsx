import { useState } from "react";
import { formatMoney } from "../lib/money";
import { displayWire } from "../lib/odds";
import { SYSTEM_NAMES, type SystemBet } from "../lib/slip";
import { useStore } from "../state/context";
import type { Receipt } from "../net/wire";
import { formatTime } from "./format";

/** Open and settled bets (bets.list), kept live by account.stream BET events. */
export function MyBets() {
  const store = useStore();
  const [tab, setTab] = useState<"OPEN" | "SETTLED">("OPEN");
  if (!store.token) {
    return (
      <section className="my-bets">
        <h1>My bets</h1>
        <p>Sign in to see your bets.</p>
      </section>
    );
  }
  const bets = store.betsNewestFirst(tab);
  const cursor = tab === "OPEN" ? store.openCursor : store.settledCursor;
  return (
    <section className="my-bets" aria-labelledby="bets-heading">
      <h1 id="bets-heading">My bets</h1>
      <div className="chips" role="group" aria-label="Which bets">
        <button type="button" className="chip" aria-pressed={tab === "OPEN"} onClick={() => setTab("OPEN")} data-tab="OPEN">
          Open
        </button>
        <button type="button" className="chip" aria-pressed={tab === "SETTLED"} onClick={() => setTab("SETTLED")} data-tab="SETTLED">
          Settled
        </button>
      </div>
      {bets.length === 0 && <p className="muted">{tab === "OPEN" ? "No open bets." : "No settled bets yet."}</p>}
      <ul className="bet-list">
        {bets.map((bet) => (
          <BetCard key={bet.betId} bet={bet} />
        ))}
      </ul>
      {cursor && (
        <button type="button" onClick={() => void store.loadMoreBets(tab)}>
          Show older bets
        </button>
      )}
    </section>
  );
}

function BetCard({ bet }: { bet: Receipt }) {
  const store = useStore();
  const kind =
    bet.type === "SYSTEM" && bet.system ? SYSTEM_NAMES[bet.system as SystemBet] ?? bet.system : bet.type === "ACCUMULATOR" ? `Accumulator (${bet.legs.length}-fold)` : "Single";
  return (
    <li className={`bet-card bet-${bet.status.toLowerCase()}`} data-bet-id={bet.betId ?? ""} data-status={bet.status}>
      <div className="bet-head">
        <strong>
          {kind}
          {bet.eachWay ? " each-way" : ""}
        </strong>
        <span className={`badge status-${bet.status.toLowerCase()}`}>{bet.status.toLowerCase()}</span>
      </div>
      <ul className="bet-legs">
        {bet.legs.map((leg) => {
          const market = store.markets.get(leg.marketId);
          const selection = market?.selections.find((s) => s.selectionId === leg.selectionId);
          return (
            <li key={`${leg.marketId}|${leg.selectionId}`}>
              {selection?.name ?? leg.selectionId} @ {displayWire(leg.price, store.oddsFormat)}
              <span className="muted small">
                {" "}
                {market ? `${market.name} · ${market.eventName}` : leg.marketId}
                {leg.result ? ` · ${leg.result.toLowerCase()}` : ""}
              </span>
            </li>
          );
        })}
      </ul>
      <dl className="bet-money">
        <div>
          <dt>Stake</dt>
          <dd>
            {formatMoney(bet.totalStake, bet.currency)}
            {bet.lines > 1 ? ` (${bet.lines} × ${formatMoney(bet.stakePerLine, bet.currency)})` : ""}
          </dd>
        </div>
        {bet.status === "SETTLED" && bet.settlement ? (
          <div>
            <dt>Returned</dt>
            <dd data-settlement-return={bet.settlement.return}>{formatMoney(bet.settlement.return, bet.currency)}</dd>
          </div>
        ) : bet.status === "VOID" ? (
          <div>
            <dt>Returned</dt>
            <dd>{formatMoney(bet.settlement?.return ?? bet.totalStake, bet.currency)} (void)</dd>
          </div>
        ) : bet.status === "REJECTED" ? (
          <div>
            <dt>Reason</dt>
            <dd>{bet.message ?? bet.code}</dd>
          </div>
        ) : (
          <div>
            <dt>Potential return</dt>
            <dd>{formatMoney(bet.potentialReturn, bet.currency)}</dd>
          </div>
        )}
      </dl>
      <div className="muted small">
        {bet.betId} · placed {formatTime(bet.placedAt)}
        {bet.settlement?.settledAt ? ` · settled ${formatTime(bet.settlement.settledAt)}` : ""}
      </div>
    </li>
  );
}
