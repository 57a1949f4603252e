import { memo } from "react";
import { displayWire, type OddsFormat } from "../lib/odds";
import type { SelectionView } from "../state/store";

const FLASH_MS = 1_200;

interface Props {
  marketId: string;
  selection: SelectionView;
  format: OddsFormat;
  /** Why it cannot be bet on (stale, suspended…), or null. */
  blocked: string | null;
  stale: boolean;
  inSlip: boolean;
  onToggle: (marketId: string, selectionId: string) => void;
  showName?: boolean;
}

/** One price: adds the selection to the slip; flashes up/down when it moves. */
export const PriceButton = memo(function PriceButton({ marketId, selection, format, blocked, stale, inSlip, onToggle, showName }: Props) {
  const text = displayWire(selection.price, format);
  const flashing = selection.move !== null && Date.now() - selection.movedAt < FLASH_MS;
  const flash = flashing ? `flash-${selection.move}` : "";
  const disabled = blocked !== null && !inSlip;
  // The accessible name is the visible text plus hidden words (WCAG 2.5.3: label in name).
  const extra = `${stale ? ", price stale" : ""}${blocked && !stale ? `, ${blocked}` : ""}${inSlip ? ", in bet slip" : ""}`;
  return (
    <button
      type="button"
      className={`price ${flash} ${stale ? "stale" : ""} ${inSlip ? "selected" : ""}`}
      aria-pressed={inSlip}
      title={blocked ?? (inSlip ? "Remove from bet slip" : "Add to bet slip")}
      disabled={disabled}
      data-market={marketId}
      data-selection={selection.selectionId}
      data-price={selection.price ?? ""}
      data-stale={stale ? "true" : "false"}
      onClick={() => onToggle(marketId, selection.selectionId)}
    >
      {showName ? <span className="sel-name">{selection.name} </span> : <span className="sr-only">{selection.name} </span>}
      <span className="odds" key={selection.moves}>
        {flashing && (
          <span className="arrow" aria-hidden="true">
            {selection.move === "up" ? "▲" : "▼"}
          </span>
        )}
        {text}
      </span>
      {extra && <span className="sr-only">{extra}</span>}
    </button>
  );
});
