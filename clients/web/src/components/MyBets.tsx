import { useState } from "react";
import { formatMoney } from "../lib/money";
import { SYSTEM_NAMES, type SystemBet } from "../lib/slip";
import { useStore } from "../state/context";
import type { BetTab } from "../state/store";
import type { Receipt } from "../net/wire";
import { legText, rejectedText, resettledNote, stakeText } from "./betText";
import { formatTime } from "./format";

const TABS: { tab: BetTab; label: string; empty: string }[] = [
  { tab: "OPEN", label: "Open", empty: "No open bets." },
  { tab: "SETTLED", label: "Settled", empty: "No settled bets yet." },
  { tab: "REJECTED", label: "Rejected", empty: "No rejected bets." },
];

/**
 * Open, settled and rejected bets (bets.list), kept live by account.stream BET events.
 * A bet refused after its in-play delay is REJECTED, not settled: it has its own tab.
 */
export function MyBets({ initialTab = "OPEN" }: { initialTab?: BetTab }) {
  const store = useStore();
  const [tab, setTab] = useState<BetTab>(initialTab);
  if (!store.token) {
    return (
      <section className="my-bets">
        <h1>My bets</h1>
        <p>Sign in to see your bets.</p>
      </section>
    );
  }
  const bets = store.betsNewestFirst(tab);
  const cursor = store.cursorFor(tab);
  const current = TABS.find((t) => t.tab === tab) ?? TABS[0];
  return (
    <section className="my-bets" aria-labelledby="bets-heading">
      <h1 id="bets-heading">My bets</h1>
      <div className="chips" role="group" aria-label="Which bets">
        {TABS.map((t) => (
          <button key={t.tab} type="button" className="chip" aria-pressed={tab === t.tab} onClick={() => setTab(t.tab)} data-tab={t.tab}>
            {t.label}
          </button>
        ))}
      </div>
      {tab === "REJECTED" && bets.length > 0 && (
        <p className="muted small">Bets refused after being held for the in-play delay. They were not settled; their stakes were refunded.</p>
      )}
      {bets.length === 0 && <p className="muted">{current.empty}</p>}
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

export function BetCard({ bet }: { bet: Receipt }) {
  const store = useStore();
  const kind =
    bet.type === "SYSTEM" && bet.system ? SYSTEM_NAMES[bet.system as SystemBet] ?? bet.system : bet.type === "ACCUMULATOR" ? `Accumulator (${bet.legs.length}-fold)` : "Single";
  const rejected = bet.status === "REJECTED";
  const note = resettledNote(bet);
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
          const text = legText(leg, store.legNames(leg.marketId, leg.selectionId), store.oddsFormat);
          return (
            <li key={`${leg.marketId}|${leg.selectionId}`} data-market-id={leg.marketId} data-selection-id={leg.selectionId}>
              {text.selection}
              <span className="muted small"> {text.market}</span>
            </li>
          );
        })}
      </ul>
      <dl className="bet-money">
        <div>
          <dt>{rejected ? "Stake asked" : "Stake"}</dt>
          <dd>{stakeText(bet)}</dd>
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
        ) : rejected ? (
          <div>
            <dt>Reason</dt>
            <dd data-reject-code={bet.code ?? ""}>{rejectedText(bet, store.oddsFormat)}</dd>
          </div>
        ) : (
          <div>
            <dt>Potential return</dt>
            <dd>{formatMoney(bet.potentialReturn, bet.currency)}</dd>
          </div>
        )}
      </dl>
      {note && (bet.status === "SETTLED" || bet.status === "VOID") && (
        <p className="bet-note" data-resettled={bet.settlement?.previousReturn ?? ""}>
          {note}
        </p>
      )}
      <div className="muted small">
        {bet.betId} · placed {formatTime(bet.placedAt)}
        {rejected && bet.rejectedAt ? ` · rejected ${formatTime(bet.rejectedAt)}` : ""}
        {!rejected && bet.settlement?.settledAt ? ` · ${note ? "resettled" : "settled"} ${formatTime(bet.settlement.settledAt)}` : ""}
      </div>
    </li>
  );
}
