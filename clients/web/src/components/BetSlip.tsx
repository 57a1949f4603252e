import { useId } from "react";
import { formatMoney } from "../lib/money";
import { displayWire, comparePrices } from "../lib/odds";
import { type SlipMode, modeLabel, modesFor } from "../lib/slip";
import { useStore } from "../state/context";
import { rejectionReason, type PlacementResult } from "../state/store";

const POLICIES = [
  { value: "NONE", label: "Reject the bet if the price changes" },
  { value: "HIGHER", label: "Accept higher prices" },
  { value: "ANY", label: "Accept any price change" },
] as const;

function modeValue(mode: SlipMode): string {
  return mode.kind === "SYSTEM" ? mode.system : mode.kind;
}

/** The bet slip: singles, accumulator, system bets, each-way, price-change policy. */
export function BetSlip() {
  const store = useStore();
  const ids = useId();
  const { legs, mode, stakeText, eachWay, policy } = store.slip;
  const currency = store.account?.currency ?? "GBP";
  const modes = modesFor(legs.length);
  const summary = store.summary();
  const blocked = store.slipBlocked();
  const ewOffered = store.eachWayOffered();
  const terms = legs.length > 0 ? store.markets.get(legs[0].marketId)?.eachWay : null;

  return (
    <section className="slip" aria-labelledby={`${ids}-h`}>
      <h2 id={`${ids}-h`}>
        Bet slip {legs.length > 0 && <span className="count">({legs.length})</span>}
      </h2>
      {legs.length === 0 && <p className="muted">Select a price to add it to your slip.</p>}
      <ul className="slip-legs">
        {legs.map((leg) => {
          const live = store.livePrice(leg);
          const moved = live !== null && live !== leg.price;
          const direction = moved ? comparePrices(live, leg.price) : 0;
          const legBlocked = store.selectionBlocked(store.markets.get(leg.marketId), leg.selectionId);
          return (
            <li key={`${leg.marketId}|${leg.selectionId}`} className="slip-leg" data-slip-leg={leg.selectionId}>
              <div className="slip-leg-head">
                <strong>{leg.selectionName}</strong>
                <span className="slip-price" data-slip-price={leg.price}>
                  {displayWire(leg.price, store.oddsFormat)}
                </span>
                <button
                  type="button"
                  className="icon"
                  aria-label={`Remove ${leg.selectionName} from the slip`}
                  onClick={() => store.removeLeg(leg.marketId, leg.selectionId)}
                >
                  ×
                </button>
              </div>
              <div className="muted small">
                {leg.marketName} · {leg.eventName}
              </div>
              {moved && (
                <div className={`price-moved ${direction > 0 ? "up" : "down"}`} data-price-moved="true">
                  Price {direction > 0 ? "up" : "down"}: now {displayWire(live, store.oddsFormat)}{" "}
                  <button type="button" className="link" onClick={() => store.acceptLivePrice(leg.marketId, leg.selectionId)}>
                    Take {displayWire(live, store.oddsFormat)}
                  </button>
                </div>
              )}
              {legBlocked && <div className="warn small">{legBlocked}</div>}
            </li>
          );
        })}
      </ul>
      {legs.length > 0 && (
        <form
          className="slip-form"
          onSubmit={(e) => {
            e.preventDefault();
            void store.placeSlip();
          }}
        >
          <label htmlFor={`${ids}-mode`}>Bet type</label>
          <select
            id={`${ids}-mode`}
            value={modeValue(mode)}
            onChange={(e) => {
              const chosen = modes.find((m) => modeValue(m) === e.target.value);
              if (chosen) store.updateSlip({ mode: chosen });
            }}
          >
            {modes.map((m) => {
              const lines = (() => {
                try {
                  return store.summaryFor(m)?.lines;
                } catch {
                  return undefined;
                }
              })();
              return (
                <option key={modeValue(m)} value={modeValue(m)}>
                  {modeLabel(m, legs.length)}
                  {lines !== undefined ? ` — ${lines} line${lines === 1 ? "" : "s"}` : ""}
                </option>
              );
            })}
          </select>

          <label htmlFor={`${ids}-stake`}>Stake per line ({currency})</label>
          <input
            id={`${ids}-stake`}
            name="stake"
            inputMode="decimal"
            autoComplete="off"
            placeholder="0.00"
            value={stakeText}
            onChange={(e) => store.updateSlip({ stakeText: e.target.value })}
            aria-invalid={stakeText !== "" && store.stakeMinor() === null}
          />

          <div className="checkbox">
            <input
              id={`${ids}-ew`}
              type="checkbox"
              checked={eachWay}
              disabled={!ewOffered}
              onChange={(e) => store.updateSlip({ eachWay: e.target.checked })}
            />
            <label htmlFor={`${ids}-ew`}>
              Each-way
              {ewOffered && terms
                ? ` (places 1–${terms.places} at ${terms.fraction} odds; doubles the lines)`
                : legs.some((l) => store.markets.get(l.marketId)?.eachWay)
                  ? " (not offered on every selection)"
                  : " (not offered)"}
            </label>
          </div>

          <fieldset className="policy">
            <legend>If the price changes</legend>
            {POLICIES.map((p) => (
              <div key={p.value} className="radio">
                <input
                  type="radio"
                  id={`${ids}-policy-${p.value}`}
                  name="policy"
                  value={p.value}
                  checked={policy === p.value}
                  onChange={() => store.updateSlip({ policy: p.value })}
                />
                <label htmlFor={`${ids}-policy-${p.value}`}>{p.label}</label>
              </div>
            ))}
          </fieldset>

          {summary && (
            <dl className="summary" aria-label="Slip summary">
              <div>
                <dt>Bets</dt>
                <dd data-summary="bets">{summary.bets.length}</dd>
              </div>
              <div>
                <dt>Lines</dt>
                <dd data-summary="lines">{summary.lines}</dd>
              </div>
              <div>
                <dt>Total stake</dt>
                <dd data-summary="total-stake">{formatMoney(summary.totalStake, currency)}</dd>
              </div>
              <div>
                <dt>Potential return</dt>
                <dd data-summary="potential-return">{formatMoney(summary.potentialReturn, currency)}</dd>
              </div>
            </dl>
          )}
          <button type="submit" className="primary" disabled={blocked !== null} aria-describedby={`${ids}-why`} data-place-bet="true">
            Place {summary && summary.bets.length > 1 ? `${summary.bets.length} bets` : "bet"}
          </button>
          <p id={`${ids}-why`} className={blocked ? "warn small" : "sr-only"} data-slip-blocked={blocked ?? ""}>
            {blocked ?? "Ready to place."}
          </p>
          <button type="button" className="link" onClick={() => store.clearSlip()}>
            Clear slip
          </button>
        </form>
      )}
      <Results results={store.results} />
    </section>
  );
}

function Results({ results }: { results: PlacementResult[] }) {
  const store = useStore();
  return (
    <div className="results" role="log" aria-live="polite" aria-relevant="additions text" aria-label="Bet results">
      {results.map((r) => (
        <ResultItem key={r.requestId} result={r} onDismiss={() => store.dismissResult(r.requestId)} format={store.oddsFormat} />
      ))}
    </div>
  );
}

function ResultItem({ result, onDismiss, format }: { result: PlacementResult; onDismiss: () => void; format: Parameters<typeof rejectionReason>[1] }) {
  const receipt = result.receipt;
  let status: string;
  let text: string;
  if (result.state === "ERROR") {
    status = "error";
    text = `Not placed: ${result.error}`;
  } else if (result.state === "SENDING") {
    status = "sending";
    text = "Sending…";
  } else if (!receipt || receipt.status === "PENDING" || result.state === "PENDING") {
    status = "pending";
    text = "Pending: held for the in-play delay, then checked against the price again…";
  } else if (receipt.status === "REJECTED") {
    status = "rejected";
    text = `Rejected (${receipt.code}): ${rejectionReason(receipt, format)}`;
  } else {
    status = receipt.status.toLowerCase();
    text = `${receipt.status === "ACCEPTED" ? "Accepted" : receipt.status}: bet ${receipt.betId}, stake ${formatMoney(
      receipt.totalStake,
      receipt.currency,
    )}, potential return ${formatMoney(receipt.potentialReturn, receipt.currency)}`;
  }
  return (
    <div className={`result result-${status}`} data-result={status} data-request-id={result.requestId} data-code={receipt?.code ?? ""}>
      <div className="result-label">{result.label}</div>
      <div>{text}</div>
      {status !== "sending" && status !== "pending" && (
        <button type="button" className="icon" aria-label="Dismiss" onClick={onDismiss}>
          ×
        </button>
      )}
    </div>
  );
}
