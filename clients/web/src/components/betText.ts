/**
 * My Bets' words for a receipt: the stake (a rejected bet's as asked), the reason a bet
 * was rejected, a correction's note, and a leg's names. Money is integer minor units
 * (BigInt), formatted by lib/money; nothing here is a float.
 */
import { formatMoney } from "../lib/money";
import { displayWire, type OddsFormat } from "../lib/odds";
import { lineCount, shapeProblem, type SystemBet } from "../lib/slip";
import type { Receipt } from "../net/wire";
import { type LegNames, rejectionReason } from "../state/store";

/**
 * The stake the customer asked for on a REJECTED bet. A bet refused after its in-play
 * delay comes back as `bets.place` refuses one: `lines: 0`, `totalStake: 0`, but the
 * `stakePerLine` asked; the lines are then counted from the bet's shape (type, system,
 * legs, each-way). A PENDING bet refused because its market settled keeps its stake.
 */
export function askedStake(bet: Receipt): { total: bigint | null; perLine: bigint; lines: number | null } {
  const perLine = BigInt(bet.stakePerLine ?? 0);
  if (bet.totalStake > 0) return { total: BigInt(bet.totalStake), perLine, lines: bet.lines > 0 ? bet.lines : null };
  const system = (bet.system ?? null) as SystemBet | null;
  if (perLine <= 0n || shapeProblem(bet.type, system, bet.legs.length) !== null) return { total: null, perLine, lines: null };
  const lines = lineCount(bet.type, system, bet.legs.length, bet.eachWay);
  return { total: perLine * BigInt(lines), perLine, lines };
}

/** The Stake figure: "£5.00", "£11.00 (11 × £1.00)"; a rejected bet's asked stake, or "not recorded" (never £0.00). */
export function stakeText(bet: Receipt): string {
  if (bet.status !== "REJECTED") {
    return `${formatMoney(bet.totalStake, bet.currency)}${bet.lines > 1 ? ` (${bet.lines} × ${formatMoney(bet.stakePerLine, bet.currency)})` : ""}`;
  }
  const { total, perLine, lines } = askedStake(bet);
  if (total !== null) {
    const split = lines !== null && lines > 1 ? ` (${lines} × ${formatMoney(perLine, bet.currency)})` : "";
    return `${formatMoney(total, bet.currency)}${split}, refunded`;
  }
  if (perLine > 0n) return `${formatMoney(perLine, bet.currency)} a line, refunded`;
  return "not recorded";
}

/** Why a bet was rejected, in words, with the receipt's code: "The market has closed. — … (MARKET_CLOSED)". */
export function rejectedText(bet: Receipt, format: OddsFormat = "decimal"): string {
  const words = rejectionReason(bet, format);
  return bet.code ? `${words} (${bet.code})` : words;
}

/** A corrected settlement's note: "Resettled (was £19.60)", or null when it was not corrected. */
export function resettledNote(bet: Receipt): string | null {
  const settlement = bet.settlement;
  if (!settlement?.resettled) return null;
  if (typeof settlement.previousReturn !== "number") return "Resettled";
  return `Resettled (was ${formatMoney(settlement.previousReturn, bet.currency)})`;
}

/** A leg as two strings: "Home @ 2.50" and "Match Odds · Arsenal v Spurs" (or why there is no name). */
export function legText(
  leg: { marketId: string; selectionId: string; price: string; result: string | null },
  names: LegNames,
  format: OddsFormat = "decimal",
): { selection: string; market: string } {
  const selection = `${names.selection ?? `Selection ${leg.selectionId}`} @ ${displayWire(leg.price, format)}`;
  let market: string;
  if (names.market !== null) {
    market = names.event ? `${names.market} · ${names.event}` : names.market;
  } else if (names.source === "looking") {
    market = `Market ${leg.marketId} (looking up its name…)`;
  } else if (names.source === "missing") {
    market = `Market ${leg.marketId} (not listed by the server now; name unavailable)`;
  } else {
    market = `Market ${leg.marketId}`;
  }
  return { selection, market: leg.result ? `${market} · ${leg.result.toLowerCase()}` : market };
}
