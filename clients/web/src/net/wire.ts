/** Wire types (PROTOCOL.md, docs/WIRE.md, docs/BETTING.md): what the server sends. */

export interface EachWayWire {
  places: number;
  fraction: string;
}

export type MarketStatus = "OPEN" | "SUSPENDED" | "CLOSED" | "SETTLED";
export type SelectionStatus = "ACTIVE" | "REMOVED" | "WINNER" | "LOSER" | "PLACED" | "VOID";

export interface SelectionWire {
  selectionId: string;
  name: string;
  price: string | null;
  status: SelectionStatus;
  handicap: string | null;
}

export interface MarketSnapshot {
  marketId: string;
  eventId: string;
  eventName?: string;
  sport?: string;
  startTime?: string;
  name: string;
  type: string;
  status: MarketStatus;
  inPlay: boolean;
  betDelayMs: number;
  eachWay: EachWayWire | null;
  priceFormat?: string;
  selections: SelectionWire[];
  seq: number;
  updatedAt: string;
}

export interface SelectionChange {
  selectionId: string;
  price?: string | null;
  status?: SelectionStatus;
}

export interface MarketDelta {
  marketId: string;
  seq: number;
  changes: {
    status?: MarketStatus;
    inPlay?: boolean;
    betDelayMs?: number;
    selections?: SelectionChange[];
  };
}

export type OddsFrame =
  | { kind: "snapshot"; market: MarketSnapshot; clk: string }
  | { kind: "delta"; markets: MarketDelta[]; clk: string }
  | { kind: "heartbeat"; clk: string; feedHealthy?: boolean }
  | { kind: "status"; feedHealthy: boolean; reason: string | null; clk: string };

export interface CatalogEvent {
  eventId: string;
  name: string;
  sport: string;
  competition: string | null;
  country: string | null;
  startTime: string;
  inPlay: boolean;
  markets: { marketId: string; name: string; type: string; status: MarketStatus }[];
}

export type BetStatus = "PENDING" | "ACCEPTED" | "REJECTED" | "SETTLED" | "VOID";

export interface Receipt {
  betId: string | null;
  requestId: string;
  status: BetStatus;
  code: string | null;
  message: string | null;
  details?: Record<string, unknown>;
  placedAt: string;
  type: "SINGLE" | "ACCUMULATOR" | "SYSTEM";
  system: string | null;
  eachWay: boolean;
  legs: { marketId: string; selectionId: string; price: string; result: string | null }[];
  lines: number;
  stakePerLine: number;
  totalStake: number;
  potentialReturn: number;
  currency: string;
  balanceAfter: number | null;
  /** Extension: the payout cap in force at acceptance (FIELD_CASES B14). */
  maxPayout?: number;
  /** Extension: when a PENDING bet was refused because its market settled first (docs/SETTLEMENT.md). */
  rejectedAt?: string;
  settlement: Settlement | null;
}

/** A receipt's `settlement` (PROTOCOL.md; a correction adds `resettled` and `previousReturn`, docs/SETTLEMENT.md). */
export interface Settlement {
  return: number;
  settledAt: string;
  legs?: { result: string; deadHeatFactor?: string; reductionFactor?: string }[];
  /** Set when a corrected result restated the bet. */
  resettled?: boolean;
  /** The return it had before the correction (minor units). */
  previousReturn?: number;
}

export interface Account {
  accountId: string;
  currency: string;
  balance: number;
  openBets: number;
  limits: Record<string, unknown>;
}

export type AccountEvent =
  | { kind: "BET"; bet: Receipt }
  | { kind: "BALANCE"; balance: number; currency: string; reason: string; betId?: string | null }
  | { kind: "MARKET"; marketId: string; status: MarketStatus }
  | { kind: "heartbeat"; clk?: string };

export interface BetLegRequest {
  marketId: string;
  selectionId: string;
  price: string;
  seq?: number;
}

export interface BetRequest {
  requestId: string;
  type: "SINGLE" | "ACCUMULATOR" | "SYSTEM";
  system: string | null;
  legs: BetLegRequest[];
  stake: number;
  eachWay: boolean;
  acceptPriceChange: "NONE" | "HIGHER" | "ANY";
}
