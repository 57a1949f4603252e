import { memo } from "react";
import type { OddsFormat } from "../lib/odds";
import type { MarketView } from "../state/store";
import { PriceButton } from "./PriceButton";

interface Props {
  market: MarketView;
  format: OddsFormat;
  stale: boolean;
  /** Selection ids of this market in the slip, joined (a string keeps memo cheap). */
  slipKeys: string;
  blockedOf: (market: MarketView, selectionId: string) => string | null;
  onToggle: (marketId: string, selectionId: string) => void;
  limit?: number;
  showNames?: boolean;
}

/** A market's prices as buttons; re-renders only when its market object changes. */
export const MarketPrices = memo(function MarketPrices({ market, format, stale, slipKeys, blockedOf, onToggle, limit, showNames }: Props) {
  const inSlip = new Set(slipKeys ? slipKeys.split("|") : []);
  const selections = market.selections.filter((s) => s.status === "ACTIVE" || s.price !== null);
  const shown = limit === undefined ? selections : selections.slice(0, limit);
  if (shown.length === 0) return <p className="muted small">No prices offered now.</p>;
  return (
    <div className="prices" role="group" aria-label={`${market.name} prices`}>
      {shown.map((s) => (
        <PriceButton
          key={s.selectionId}
          marketId={market.marketId}
          selection={s}
          format={format}
          blocked={blockedOf(market, s.selectionId)}
          stale={stale}
          inSlip={inSlip.has(s.selectionId)}
          onToggle={onToggle}
          showName={showNames}
        />
      ))}
    </div>
  );
});
