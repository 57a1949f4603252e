/**
 * The app's state and its one connection to the server.
 *
 * - Reconnects by itself with backoff (rsocket-js reports errors only on the first
 *   connection, FIELD_CASES B24), and resumes `odds.stream` from the last `clk`.
 * - Honest when stale: while the connection is down, the feed is unhealthy (a
 *   `status` frame, or a heartbeat with `feedHealthy: false`), or no frame has come
 *   for longer than the heartbeat allows, every price is shown stale and betting is
 *   disabled. After a reconnect a market is live again only once the new stream has
 *   confirmed it (its snapshot, or proof that the resume was honoured).
 * - Backpressure: odds frames are requested in a small window (request-n) and more
 *   are asked for only after the queued frames were applied in an animation frame,
 *   so a busy feed can never queue more than the window in the page.
 *
 * Components read the store directly and re-render on `version` (useSyncExternalStore).
 */
import { type Price, type OddsFormat, displayWire, parsePrice } from "../lib/odds";
import { formatMoney, parseStake } from "../lib/money";
import {
  type EachWayTerms,
  type PriceChangePolicy,
  type SlipMode,
  type SlipSummary,
  modesFor,
  parseEachWay,
  shapeProblem,
  summarise,
} from "../lib/slip";
import { Connection, SportsbookError, type StreamHandle } from "../net/rsocket";
import type {
  Account,
  AccountEvent,
  BetRequest,
  CatalogEvent,
  EachWayWire,
  MarketDelta,
  MarketSnapshot,
  MarketStatus,
  OddsFrame,
  Receipt,
  SelectionStatus,
} from "../net/wire";

/** Frames requested at once on odds.stream; more only after these are applied. */
export const ODDS_WINDOW = 8;
/** Heartbeats come at least every 5 s: no frame for this long means the stream is stuck. */
export const STALE_AFTER_MS = 12_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5_000;
const BETS_PAGE = 50;
/** At most this many markets' names are looked up and kept for My Bets: the newest bets' markets. */
export const MARKET_NAMES_MAX = 500;
/**
 * Bets arriving wait this long before their unknown markets are looked up: on a fresh
 * connection the odds stream's snapshots usually name them first.
 */
export const NAME_LOOKUP_DELAY_MS = 1_500;
/** catalog.market requests in flight at once for names. */
export const NAME_LOOKUPS_AT_ONCE = 4;
/** Failures worth asking again later; any other answer (NOT_FOUND…) means no names. */
const TRANSIENT_CODES = new Set(["CONNECTION", "RATE_LIMITED", "UNAVAILABLE", "INTERNAL", "PROTOCOL"]);

export type ConnState = "connecting" | "live" | "down";

export interface SelectionView {
  selectionId: string;
  name: string;
  price: string | null;
  status: SelectionStatus;
  handicap: string | null;
  /** Direction of the last price move and when it happened (for the flash). */
  move: "up" | "down" | null;
  movedAt: number;
  moves: number;
}

export interface MarketView {
  marketId: string;
  eventId: string;
  eventName: string;
  sport: string;
  startTime: string | null;
  name: string;
  type: string;
  status: MarketStatus;
  inPlay: boolean;
  betDelayMs: number;
  eachWay: EachWayWire | null;
  selections: SelectionView[];
  seq: number;
  /** Confirmed by the current stream (false after a reconnect until it is). */
  fresh: boolean;
}

export interface SlipLeg {
  marketId: string;
  selectionId: string;
  selectionName: string;
  marketName: string;
  eventId: string;
  eventName: string;
  /** The price the customer accepted (sent as the leg's price). */
  price: string;
  /** The market seq the customer saw. */
  seq: number;
}

export interface PlacementResult {
  requestId: string;
  label: string;
  state: "SENDING" | "PENDING" | "DONE" | "ERROR";
  receipt: Receipt | null;
  error: string | null;
  at: number;
}

type Listener = () => void;

function newRequestId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function priceMove(before: string | null, after: string | null): "up" | "down" | null {
  if (before === null || after === null || before === after) return null;
  try {
    const cmp = parsePrice(after).odds.cmp(parsePrice(before).odds);
    return cmp > 0 ? "up" : cmp < 0 ? "down" : null;
  } catch {
    return null;
  }
}

export function isOpenBet(status: Receipt["status"]): boolean {
  return status === "PENDING" || status === "ACCEPTED";
}

/** My Bets' tabs: open (PENDING, ACCEPTED), settled (SETTLED, VOID), rejected (REJECTED). */
export type BetTab = "OPEN" | "SETTLED" | "REJECTED";

/** The tab a bet is listed under: a REJECTED bet is not a settled one. */
export function betTab(status: Receipt["status"]): BetTab {
  if (isOpenBet(status)) return "OPEN";
  return status === "REJECTED" ? "REJECTED" : "SETTLED";
}

/** Names for a market the odds stream has not (or no longer) given: a catalog.market answer. */
export interface MarketNames {
  marketId: string;
  name: string;
  eventName: string;
  selections: Map<string, string>;
}

/** Looked up, or "missing" when the server does not know the market (NOT_FOUND). */
export type MarketNamesEntry = MarketNames | "missing";

/** What My Bets can say about one leg's market and selection. */
export interface LegNames {
  selection: string | null;
  market: string | null;
  event: string | null;
  /** Where the names came from, or why there are none. */
  source: "live" | "lookup" | "catalogue" | "looking" | "missing" | "unknown";
}

export function namesOf(snapshot: MarketSnapshot): MarketNames {
  return {
    marketId: snapshot.marketId,
    name: snapshot.name,
    eventName: snapshot.eventName ?? snapshot.eventId,
    selections: new Map(snapshot.selections.map((s) => [s.selectionId, s.name])),
  };
}

export class Store {
  // ---- state read by the UI ----
  version = 0;
  conn: ConnState = "connecting";
  connDetail = "Connecting…";
  attempt = 0;
  token: string | null = null;
  authError: string | null = null;
  /** The last connection failure, for the curious (title of the status banner). */
  lastError: string | null = null;
  account: Account | null = null;
  feedHealthy = true;
  feedReason: string | null = null;
  /** No frame within STALE_AFTER_MS while connected. */
  silent = false;
  events: CatalogEvent[] = [];
  markets = new Map<string, MarketView>();
  oddsFormat: OddsFormat = "decimal";
  bets = new Map<string, Receipt>();
  openCursor: string | null = null;
  settledCursor: string | null = null;
  /**
   * Names of markets that bets refer to but the odds stream has not given (not yet, or
   * not at all: a restarted server, other recordings): catalog.market answers, at most
   * MARKET_NAMES_MAX (the newest bets' markets). Public catalogue data, not personal.
   */
  marketNames = new Map<string, MarketNamesEntry>();
  results: PlacementResult[] = [];
  slip: {
    legs: SlipLeg[];
    mode: SlipMode;
    stakeText: string;
    eachWay: boolean;
    policy: PriceChangePolicy;
  } = { legs: [], mode: { kind: "SINGLES" }, stakeText: "", eachWay: false, policy: "NONE" };
  /** Frames applied since load (for the e2e and the status bar). */
  framesApplied = 0;
  lastClk: string | null = null;

  // ---- internals ----
  private listeners = new Set<Listener>();
  private connection: Connection | null = null;
  private odds: StreamHandle | null = null;
  /** account.stream of this connection (cancelled with it). */
  accountStream: StreamHandle | null = null;
  private queue: OddsFrame[] = [];
  private drainScheduled = false;
  private lastFrameAt = 0;
  private streamSawSnapshot = false;
  private streamSnapshotted = new Set<string>();
  private disposed = false;
  private wake: (() => void) | null = null;
  private notifyScheduled = false;
  private signingIn = false;
  private namesLooking = new Set<string>();
  private namesTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly url: string) {
    const saved = globalThis.sessionStorage?.getItem("sportsbook.token") ?? null;
    this.token = saved;
    const format = globalThis.localStorage?.getItem("sportsbook.oddsFormat") as OddsFormat | null;
    if (format) this.oddsFormat = format;
  }

  // ---- subscription (useSyncExternalStore) ----
  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    this.version++;
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      for (const listener of this.listeners) listener();
    });
  }

  // ---- derived state ----
  /** Prices cannot be trusted right now (connection, feed health, or silence). */
  get stale(): boolean {
    return this.conn !== "live" || !this.feedHealthy || this.silent;
  }

  get staleReason(): string | null {
    if (this.conn === "connecting" && this.attempt === 0 && this.markets.size === 0) return "Connecting to live prices…";
    if (this.conn !== "live") return `Connection lost — prices are stale. ${this.connDetail}`;
    if (!this.feedHealthy) return `Price feed unhealthy${this.feedReason ? ` (${this.feedReason})` : ""} — prices may be stale.`;
    if (this.silent) return "No updates from the server — prices may be stale.";
    return null;
  }

  marketStale(market: MarketView | undefined): boolean {
    return this.stale || market === undefined || !market.fresh;
  }

  /** Why this selection cannot be bet on now, or null. */
  selectionBlocked(market: MarketView | undefined, selectionId: string): string | null {
    if (market === undefined) return "Market not available";
    if (this.marketStale(market)) return "Prices are stale";
    if (market.status !== "OPEN") return `Market ${market.status.toLowerCase()}`;
    const selection = market.selections.find((s) => s.selectionId === selectionId);
    if (!selection || selection.status !== "ACTIVE") return "Selection not active";
    if (selection.price === null) return "No price";
    return null;
  }

  // ---- lifecycle ----
  start(): void {
    void this.run();
    setInterval(() => this.watchdog(), 1_000);
  }

  dispose(): void {
    this.disposed = true;
    if (this.namesTimer !== null) clearTimeout(this.namesTimer);
    this.namesTimer = null;
    this.connection?.close();
  }

  private watchdog(): void {
    const silent = this.conn === "live" && Date.now() - this.lastFrameAt > STALE_AFTER_MS;
    if (silent !== this.silent) {
      this.silent = silent;
      this.changed();
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt - 1));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  /** Wait `ms`, or less if woken (sign-in change). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.disposed) {
      this.conn = this.attempt === 0 ? "connecting" : "down";
      this.connDetail = this.attempt === 0 ? "Connecting…" : `Reconnecting (attempt ${this.attempt})…`;
      this.changed();
      let connection: Connection;
      try {
        connection = await Connection.open(this.url, this.token);
      } catch (error) {
        await this.retryLater(SportsbookError.from(error));
        continue;
      }
      const closed = new Promise<SportsbookError | undefined>((resolve) => connection.onClose(resolve));
      this.connection = connection;
      try {
        await this.onConnected(connection);
      } catch (error) {
        connection.close();
        await this.onDisconnected(SportsbookError.from(error), closed);
        continue;
      }
      const reason = await closed;
      await this.onDisconnected(reason, closed);
    }
  }

  private async retryLater(error: SportsbookError): Promise<void> {
    this.attempt++;
    const wait = this.backoff(this.attempt);
    this.conn = "down";
    this.connDetail = `Reconnecting in ${Math.ceil(wait / 1000)} s (attempt ${this.attempt}).`;
    this.lastError = error.message;
    this.changed();
    await this.pause(wait);
  }

  private async onConnected(connection: Connection): Promise<void> {
    // Mark every market unconfirmed until the new stream says otherwise (B24).
    for (const [id, market] of this.markets) this.markets.set(id, { ...market, fresh: false });
    // A market the last server did not know may be known to this one (a restart, another replay).
    for (const [id, entry] of this.marketNames) if (entry === "missing") this.marketNames.delete(id);
    this.subscribeOdds(connection);
    const catalog = await connection.request<{ events: CatalogEvent[] }>("catalog.events", {});
    this.mergeEvents(catalog.events);
    if (this.token) {
      this.account = await connection.request<Account>("account.get", {});
      this.subscribeAccount(connection);
      await this.loadBets(connection);
    } else {
      this.account = null;
    }
    this.conn = "live";
    this.connDetail = "Live";
    this.attempt = 0;
    this.lastFrameAt = Date.now();
    this.changed();
  }

  private async onDisconnected(reason: SportsbookError | undefined, closed: Promise<unknown>): Promise<void> {
    this.odds = null;
    this.accountStream = null;
    this.connection = null;
    void closed;
    if (reason?.code === "UNAUTHENTICATED" && this.token) {
      this.authError = `Sign-in refused: ${reason.message || "unknown token"}`;
      this.setToken(null, false);
      this.attempt = 0;
      return; // reconnect at once, anonymously
    }
    if (this.disposed) return;
    if (this.signingIn) {
      this.signingIn = false;
      this.attempt = 0;
      return; // a sign-in change closed it: reconnect at once
    }
    await this.retryLater(reason ?? new SportsbookError("CONNECTION", "connection closed"));
  }

  // ---- odds.stream with a request-n window --------------------------------------------
  private subscribeOdds(connection: Pick<Connection, "stream">): void {
    this.streamSawSnapshot = false;
    this.streamSnapshotted = new Set();
    this.queue = [];
    const body = { resume: this.lastClk };
    this.odds = connection.stream<OddsFrame>("odds.stream", body, ODDS_WINDOW, {
      next: (frame) => {
        this.lastFrameAt = Date.now();
        this.queue.push(frame);
        this.scheduleDrain();
      },
      error: () => undefined, // the connection's close drives reconnection
      complete: () => undefined,
    });
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    let done = false;
    const drain = () => {
      if (done) return;
      done = true;
      this.drainScheduled = false;
      this.drain();
    };
    requestAnimationFrame(drain);
    setTimeout(drain, 250); // a hidden tab gets no animation frames: still drain, slowly
  }

  /** Apply every queued frame, then ask for as many more as were applied. */
  private drain(): void {
    const frames = this.queue;
    this.queue = [];
    if (frames.length === 0) return;
    for (const frame of frames) this.apply(frame);
    this.framesApplied += frames.length;
    this.changed();
    this.odds?.request(frames.length);
  }

  private apply(frame: OddsFrame): void {
    if ("clk" in frame && frame.clk) this.lastClk = frame.clk;
    switch (frame.kind) {
      case "snapshot":
        this.streamSawSnapshot = true;
        this.streamSnapshotted.add(frame.market.marketId);
        this.applySnapshot(frame.market);
        return;
      case "delta":
        for (const change of frame.markets) {
          const market = this.markets.get(change.marketId);
          if (market && !market.fresh && !this.streamSnapshotted.has(change.marketId)) {
            this.confirmAll(); // a delta for a market we were not re-sent: the resume was honoured
          }
          this.applyDelta(change);
        }
        return;
      case "heartbeat":
        if (!this.streamSawSnapshot) this.confirmAll(); // nothing missed since our clk
        if (typeof frame.feedHealthy === "boolean") this.setFeedHealth(frame.feedHealthy, frame.feedHealthy ? null : this.feedReason);
        return;
      case "status":
        this.setFeedHealth(frame.feedHealthy, frame.reason);
        return;
    }
  }

  private setFeedHealth(healthy: boolean, reason: string | null): void {
    this.feedHealthy = healthy;
    this.feedReason = healthy ? null : reason;
  }

  private confirmAll(): void {
    for (const [id, market] of this.markets) if (!market.fresh) this.markets.set(id, { ...market, fresh: true });
  }

  private applySnapshot(snapshot: MarketSnapshot): void {
    const before = this.markets.get(snapshot.marketId);
    const now = Date.now();
    const selections = snapshot.selections.map((s): SelectionView => {
      const old = before?.selections.find((o) => o.selectionId === s.selectionId);
      const move = old ? priceMove(old.price, s.price) : null;
      return {
        selectionId: s.selectionId,
        name: s.name,
        price: s.price,
        status: s.status,
        handicap: s.handicap,
        move: move ?? old?.move ?? null,
        movedAt: move ? now : (old?.movedAt ?? 0),
        moves: (old?.moves ?? 0) + (move ? 1 : 0),
      };
    });
    this.markets.set(snapshot.marketId, {
      marketId: snapshot.marketId,
      eventId: snapshot.eventId,
      eventName: snapshot.eventName ?? before?.eventName ?? snapshot.eventId,
      sport: snapshot.sport ?? before?.sport ?? "",
      startTime: snapshot.startTime ?? null,
      name: snapshot.name,
      type: snapshot.type,
      status: snapshot.status,
      inPlay: snapshot.inPlay,
      betDelayMs: snapshot.betDelayMs,
      eachWay: snapshot.eachWay,
      selections,
      seq: snapshot.seq,
      fresh: true,
    });
    this.ensureEvent(snapshot);
  }

  private applyDelta(delta: MarketDelta): void {
    const market = this.markets.get(delta.marketId);
    if (!market) return; // a delta before its snapshot cannot be applied
    const changes = delta.changes;
    const now = Date.now();
    let selections = market.selections;
    if (changes.selections) {
      const byId = new Map(changes.selections.map((c) => [c.selectionId, c]));
      selections = market.selections.map((s) => {
        const c = byId.get(s.selectionId);
        if (!c) return s;
        const price = c.price !== undefined ? c.price : s.price;
        const move = priceMove(s.price, price);
        return {
          ...s,
          price,
          status: c.status ?? s.status,
          move: move ?? s.move,
          movedAt: move ? now : s.movedAt,
          moves: s.moves + (move ? 1 : 0),
        };
      });
    }
    this.markets.set(delta.marketId, {
      ...market,
      status: changes.status ?? market.status,
      inPlay: changes.inPlay ?? market.inPlay,
      betDelayMs: changes.betDelayMs ?? market.betDelayMs,
      selections,
      seq: delta.seq,
      fresh: true,
    });
  }

  private ensureEvent(snapshot: MarketSnapshot): void {
    const event = this.events.find((e) => e.eventId === snapshot.eventId);
    const entry = { marketId: snapshot.marketId, name: snapshot.name, type: snapshot.type, status: snapshot.status };
    if (!event) {
      this.events = [
        ...this.events,
        {
          eventId: snapshot.eventId,
          name: snapshot.eventName ?? snapshot.eventId,
          sport: snapshot.sport ?? "other",
          competition: null,
          country: null,
          startTime: snapshot.startTime ?? snapshot.updatedAt,
          inPlay: snapshot.inPlay,
          markets: [entry],
        },
      ];
    } else if (!event.markets.some((m) => m.marketId === snapshot.marketId)) {
      this.events = this.events.map((e) => (e === event ? { ...e, markets: [...e.markets, entry] } : e));
    }
  }

  private mergeEvents(events: CatalogEvent[]): void {
    const known = new Set(events.map((e) => e.eventId));
    // Keep events learned from snapshots that the catalogue does not list (yet).
    this.events = [...events, ...this.events.filter((e) => !known.has(e.eventId))];
  }

  // ---- account ------------------------------------------------------------------------
  private subscribeAccount(connection: Connection): void {
    const handle: StreamHandle = connection.stream<AccountEvent>("account.stream", {}, 32, {
      next: (event) => {
        this.applyAccountEvent(event);
        handle.request(1); // events are facts: take each, keep the window at 32
      },
      error: () => undefined,
      complete: () => undefined,
    });
    this.accountStream = handle;
  }

  private applyAccountEvent(event: AccountEvent): void {
    if (event.kind === "BET") {
      this.upsertBet(event.bet);
      const result = this.results.find((r) => r.requestId === event.bet.requestId);
      if (result && result.state !== "DONE" && result.state !== "ERROR") {
        result.receipt = event.bet;
        result.state = event.bet.status === "PENDING" ? "PENDING" : "DONE";
        this.results = [...this.results];
      }
    } else if (event.kind === "BALANCE" && this.account) {
      this.account = { ...this.account, balance: event.balance, currency: event.currency };
    } else if (event.kind === "MARKET") {
      const market = this.markets.get(event.marketId);
      if (market) this.markets.set(market.marketId, { ...market, status: event.status });
    }
    this.changed();
  }

  private upsertBet(receipt: Receipt): void {
    if (!receipt.betId) return;
    this.bets.set(receipt.betId, receipt);
    this.bets = new Map(this.bets);
    this.scheduleNameLookup();
  }

  private async loadBets(connection: Connection): Promise<void> {
    const [open, settled] = await Promise.all([
      connection.request<{ bets: Receipt[]; cursor?: string | null }>("bets.list", { status: "OPEN", limit: BETS_PAGE }),
      connection.request<{ bets: Receipt[]; cursor?: string | null }>("bets.list", { status: "SETTLED", limit: BETS_PAGE }),
    ]);
    for (const bet of [...open.bets, ...settled.bets]) if (bet.betId) this.bets.set(bet.betId, bet);
    this.bets = new Map(this.bets);
    this.openCursor = open.cursor ?? null;
    this.settledCursor = settled.cursor ?? null;
    this.scheduleNameLookup();
  }

  /** The next page for a tab: REJECTED bets come in bets.list's SETTLED pages (every closed bet). */
  async loadMoreBets(tab: BetTab): Promise<void> {
    const which = tab === "OPEN" ? "OPEN" : "SETTLED";
    const cursor = which === "OPEN" ? this.openCursor : this.settledCursor;
    if (!this.connection || !cursor) return;
    const page = await this.connection.request<{ bets: Receipt[]; cursor?: string | null }>("bets.list", {
      status: which,
      limit: BETS_PAGE,
      cursor,
    });
    for (const bet of page.bets) if (bet.betId) this.bets.set(bet.betId, bet);
    this.bets = new Map(this.bets);
    if (which === "OPEN") this.openCursor = page.cursor ?? null;
    else this.settledCursor = page.cursor ?? null;
    this.scheduleNameLookup();
    this.changed();
  }

  /** The cursor "Show older bets" follows on a tab. */
  cursorFor(tab: BetTab): string | null {
    return tab === "OPEN" ? this.openCursor : this.settledCursor;
  }

  betsNewestFirst(tab: BetTab): Receipt[] {
    return [...this.bets.values()]
      .filter((bet) => betTab(bet.status) === tab)
      .sort((a, b) => (a.placedAt < b.placedAt ? 1 : a.placedAt > b.placedAt ? -1 : 0));
  }

  // ---- names for My Bets ------------------------------------------------------------------

  /**
   * The names of a bet leg's selection and market: from the odds stream's market, else a
   * catalog.market lookup, else the catalogue's market name (no selections), else none,
   * saying whether a lookup is under way or found nothing.
   */
  legNames(marketId: string, selectionId: string): LegNames {
    const live = this.markets.get(marketId);
    const looked = this.marketNames.get(marketId);
    const lookedUp = looked !== undefined && looked !== "missing" ? looked : undefined;
    if (live) {
      const selection = live.selections.find((s) => s.selectionId === selectionId)?.name ?? lookedUp?.selections.get(selectionId) ?? null;
      return { selection, market: live.name, event: live.eventName, source: "live" };
    }
    if (lookedUp) {
      return { selection: lookedUp.selections.get(selectionId) ?? null, market: lookedUp.name, event: lookedUp.eventName, source: "lookup" };
    }
    for (const event of this.events) {
      const entry = event.markets.find((m) => m.marketId === marketId);
      if (entry) return { selection: null, market: entry.name, event: event.name, source: "catalogue" };
    }
    const source = this.namesLooking.has(marketId) ? "looking" : looked === "missing" ? "missing" : "unknown";
    return { selection: null, market: null, event: null, source };
  }

  /**
   * The markets loaded bets have legs on, newest bets first, at most MARKET_NAMES_MAX:
   * the ones My Bets keeps names for (older bets' beyond that show the market id).
   */
  betMarkets(): string[] {
    const ids = new Set<string>();
    const newestFirst = [...this.bets.values()].sort((a, b) => (a.placedAt < b.placedAt ? 1 : a.placedAt > b.placedAt ? -1 : 0));
    for (const bet of newestFirst) {
      for (const leg of bet.legs) {
        ids.add(leg.marketId);
        if (ids.size >= MARKET_NAMES_MAX) return [...ids];
      }
    }
    return [...ids];
  }

  /** Of betMarkets(), those nothing names yet and not being looked up. */
  unnamedBetMarkets(): string[] {
    return this.betMarkets().filter((id) => !this.markets.has(id) && !this.marketNames.has(id) && !this.namesLooking.has(id));
  }

  /** Look names up a moment after bets arrive (once for a burst of them). */
  private scheduleNameLookup(): void {
    if (this.namesTimer !== null || this.disposed) return;
    this.namesTimer = setTimeout(() => {
      this.namesTimer = null;
      const connection = this.connection;
      if (connection && !connection.isClosed) void this.lookUpMarketNames(connection);
    }, NAME_LOOKUP_DELAY_MS);
  }

  /**
   * Ask catalog.market for each market bets refer to that the odds stream has not named,
   * a few at a time; remember the names (bounded), or "missing" when the server does not
   * know the market. A transient failure (a dropped connection, RATE_LIMITED) is asked
   * again when bets next change.
   */
  async lookUpMarketNames(connection: Pick<Connection, "request">): Promise<void> {
    const wanted = this.unnamedBetMarkets();
    if (wanted.length === 0) return;
    if (this.marketNames.size + wanted.length > MARKET_NAMES_MAX) {
      // Make room: first drop names no loaded bet (within the bound) needs any more.
      const needed = new Set(this.betMarkets());
      for (const id of [...this.marketNames.keys()]) if (!needed.has(id)) this.marketNames.delete(id);
    }
    for (const id of wanted) this.namesLooking.add(id);
    this.changed();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < wanted.length) {
        const marketId = wanted[next++];
        try {
          if (this.markets.has(marketId)) continue; // the stream named it meanwhile
          const snapshot = await connection.request<MarketSnapshot>("catalog.market", { marketId });
          this.rememberNames(marketId, namesOf(snapshot));
        } catch (error) {
          const failure = SportsbookError.from(error);
          if (!TRANSIENT_CODES.has(failure.code)) this.rememberNames(marketId, "missing");
        } finally {
          this.namesLooking.delete(marketId);
          this.changed();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(NAME_LOOKUPS_AT_ONCE, wanted.length) }, worker));
  }

  private rememberNames(marketId: string, entry: MarketNamesEntry): void {
    this.marketNames.delete(marketId);
    this.marketNames.set(marketId, entry);
    while (this.marketNames.size > MARKET_NAMES_MAX) {
      const oldest = this.marketNames.keys().next().value;
      if (oldest === undefined) break;
      this.marketNames.delete(oldest);
    }
  }

  // ---- sign-in --------------------------------------------------------------------------

  /** Connect again with `token` (the bearer token goes in the SETUP). */
  setToken(token: string | null, reconnect = true): void {
    const value = token?.trim() || null;
    this.token = value;
    if (value) globalThis.sessionStorage?.setItem("sportsbook.token", value);
    else globalThis.sessionStorage?.removeItem("sportsbook.token");
    if (value) this.authError = null;
    this.account = null;
    this.bets = new Map();
    this.openCursor = this.settledCursor = null;
    this.marketNames = new Map();
    this.changed();
    if (!reconnect) return;
    if (this.connection) {
      this.signingIn = true;
      this.connection.close();
    } else {
      this.attempt = 0;
      this.wake?.();
    }
  }

  setOddsFormat(format: OddsFormat): void {
    this.oddsFormat = format;
    globalThis.localStorage?.setItem("sportsbook.oddsFormat", format);
    this.changed();
  }

  // ---- the bet slip -----------------------------------------------------------------
  inSlip(marketId: string, selectionId: string): boolean {
    return this.slip.legs.some((l) => l.marketId === marketId && l.selectionId === selectionId);
  }

  toggleLeg(marketId: string, selectionId: string): void {
    if (this.inSlip(marketId, selectionId)) {
      this.removeLeg(marketId, selectionId);
      return;
    }
    const market = this.markets.get(marketId);
    const selection = market?.selections.find((s) => s.selectionId === selectionId);
    if (!market || !selection || selection.price === null || this.selectionBlocked(market, selectionId)) return;
    const legs = [
      ...this.slip.legs,
      {
        marketId,
        selectionId,
        selectionName: selection.name,
        marketName: market.name,
        eventId: market.eventId,
        eventName: market.eventName,
        price: selection.price,
        seq: market.seq,
      },
    ];
    this.setLegs(legs);
  }

  removeLeg(marketId: string, selectionId: string): void {
    this.setLegs(this.slip.legs.filter((l) => !(l.marketId === marketId && l.selectionId === selectionId)));
  }

  clearSlip(): void {
    this.setLegs([]);
  }

  private setLegs(legs: SlipLeg[]): void {
    const modes = modesFor(legs.length);
    const current = this.slip.mode;
    const stillOffered = modes.some((m) => JSON.stringify(m) === JSON.stringify(current));
    const mode = stillOffered ? current : (modes[0] ?? { kind: "SINGLES" });
    const eachWay = this.slip.eachWay && legs.length > 0 && legs.every((l) => this.markets.get(l.marketId)?.eachWay);
    this.slip = { ...this.slip, legs, mode, eachWay: Boolean(eachWay) };
    this.changed();
  }

  /** Take the live price (and seq) for a leg whose price moved. */
  acceptLivePrice(marketId: string, selectionId: string): void {
    const market = this.markets.get(marketId);
    const live = market?.selections.find((s) => s.selectionId === selectionId)?.price;
    if (!market || !live) return;
    this.slip = {
      ...this.slip,
      legs: this.slip.legs.map((l) =>
        l.marketId === marketId && l.selectionId === selectionId ? { ...l, price: live, seq: market.seq } : l,
      ),
    };
    this.changed();
  }

  updateSlip(patch: Partial<Store["slip"]>): void {
    this.slip = { ...this.slip, ...patch };
    this.changed();
  }

  livePrice(leg: SlipLeg): string | null {
    return this.markets.get(leg.marketId)?.selections.find((s) => s.selectionId === leg.selectionId)?.price ?? null;
  }

  eachWayOffered(): boolean {
    return this.slip.legs.length > 0 && this.slip.legs.every((l) => this.markets.get(l.marketId)?.eachWay);
  }

  legTerms(): (EachWayTerms | null)[] {
    return this.slip.legs.map((l) => parseEachWay(this.markets.get(l.marketId)?.eachWay));
  }

  stakeMinor(): bigint | null {
    const currency = this.account?.currency ?? "GBP";
    const stake = parseStake(this.slip.stakeText, currency);
    return stake !== null && stake > 0n ? stake : null;
  }

  summary(): SlipSummary | null {
    return this.summaryFor(this.slip.mode);
  }

  /** The slip's bets, lines, total stake and potential return if bet as `mode`. */
  summaryFor(mode: SlipMode): SlipSummary | null {
    const { legs, eachWay } = this.slip;
    if (legs.length === 0) return null;
    const prices: Price[] = legs.map((l) => parsePrice(l.price));
    const stake = this.stakeMinor() ?? 0n;
    if (mode.kind !== "SINGLES") {
      const problem = shapeProblem(mode.kind, mode.kind === "SYSTEM" ? mode.system : null, legs.length);
      if (problem) return null;
    }
    return summarise(mode, prices, stake, eachWay, this.legTerms());
  }

  /** Why the slip cannot be placed now, or null. */
  slipBlocked(): string | null {
    const { legs, mode } = this.slip;
    if (legs.length === 0) return "Add a selection to the slip";
    if (!this.token || !this.account) return "Sign in to bet";
    if (this.stale) return "Betting is paused: prices are stale";
    for (const leg of legs) {
      const blocked = this.selectionBlocked(this.markets.get(leg.marketId), leg.selectionId);
      if (blocked) return `${leg.selectionName}: ${blocked}`;
    }
    if (mode.kind !== "SINGLES") {
      const events = new Set(legs.map((l) => l.eventId));
      if (events.size < legs.length) return "Two selections from one event cannot be combined in a multiple";
    }
    if (this.stakeMinor() === null) return "Enter a stake";
    if (this.slip.eachWay && !this.eachWayOffered()) return "Each-way is not offered on every selection";
    const summary = this.summary();
    if (summary && this.account && BigInt(this.account.balance) < summary.totalStake) return "Insufficient funds";
    return null;
  }

  /** Send the slip: one bets.place per bet (singles: one per leg). */
  async placeSlip(): Promise<void> {
    const blocked = this.slipBlocked();
    const connection = this.connection;
    const summary = this.summary();
    const stake = this.stakeMinor();
    if (blocked || !connection || !summary || stake === null) return;
    const { legs, eachWay, policy } = this.slip;
    const requests: { request: BetRequest; label: string }[] = summary.bets.map((bet) => ({
      request: {
        requestId: newRequestId(),
        type: bet.type,
        system: bet.system,
        legs: bet.legs.map((i) => ({
          marketId: legs[i].marketId,
          selectionId: legs[i].selectionId,
          price: legs[i].price,
          seq: legs[i].seq,
        })),
        stake: Number(stake),
        eachWay,
        acceptPriceChange: policy,
      },
      label:
        bet.type === "SINGLE"
          ? `${legs[bet.legs[0]].selectionName} (${legs[bet.legs[0]].marketName})${eachWay ? " each-way" : ""}`
          : `${bet.system ?? "Accumulator"} of ${bet.legs.length}${eachWay ? " each-way" : ""}`,
    }));
    this.slip = { ...this.slip, legs: [], eachWay: false };
    for (const { request, label } of requests) {
      this.results = [
        { requestId: request.requestId, label, state: "SENDING" as const, receipt: null, error: null, at: Date.now() },
        ...this.results,
      ].slice(0, 20);
    }
    this.changed();
    await Promise.all(requests.map(({ request }) => this.placeOne(connection, request)));
  }

  private async placeOne(connection: Connection, request: BetRequest): Promise<void> {
    const update = (patch: Partial<PlacementResult>) => {
      this.results = this.results.map((r) => (r.requestId === request.requestId ? { ...r, ...patch } : r));
      this.changed();
    };
    try {
      const receipt = await connection.request<Receipt>("bets.place", request);
      update({ state: "DONE", receipt });
      this.upsertBet(receipt);
      if (receipt.balanceAfter !== null && this.account && receipt.status !== "REJECTED") {
        // account.stream BALANCE events are the source of truth; this only avoids a flicker
        this.account = { ...this.account, balance: Math.min(this.account.balance, receipt.balanceAfter) };
      }
      this.changed();
    } catch (error) {
      const failure = SportsbookError.from(error);
      update({ state: "ERROR", error: describeError(failure) });
    }
  }

  dismissResult(requestId: string): void {
    this.results = this.results.filter((r) => r.requestId !== requestId);
    this.changed();
  }
}

/** A protocol-level failure in words (RSocket ERROR frame, PROTOCOL.md Errors). */
export function describeError(error: SportsbookError): string {
  switch (error.code) {
    case "RATE_LIMITED":
      return "Too many bets at once — please try again in a moment.";
    case "UNAUTHENTICATED":
      return "You are not signed in.";
    case "UNAVAILABLE":
      return "Betting is unavailable right now.";
    case "CONNECTION":
      return "The connection dropped before the bet was confirmed. Check My Bets before trying again.";
    default:
      return error.message;
  }
}

/** A rejected receipt's reason in words, from its code, message and details. */
export function rejectionReason(receipt: Receipt, format: OddsFormat = "decimal"): string {
  const text: Record<string, string> = {
    MARKET_NOT_FOUND: "This market is no longer available.",
    SELECTION_NOT_FOUND: "This selection is no longer available.",
    MARKET_SUSPENDED: "The market is suspended.",
    MARKET_CLOSED: "The market has closed.",
    SELECTION_NOT_ACTIVE: "The selection is no longer running.",
    PRICE_CHANGED: "The price changed.",
    STAKE_TOO_LOW: "The stake is below the minimum.",
    STAKE_TOO_HIGH: "The stake is above the maximum.",
    MARKET_CHANGED: "The market changed since you added it (suspended or re-formed).",
    INSUFFICIENT_FUNDS: "Insufficient funds.",
    LIABILITY_LIMIT: "This bet would exceed the liability limit.",
    IDEMPOTENCY_CONFLICT: "A different bet was already sent with this request.",
    MAX_PAYOUT: "The potential return is above the maximum payout.",
    RELATED_LEGS: "Two selections from the same event cannot be combined.",
    INVALID_BET: "This bet is not valid.",
    EACH_WAY_NOT_OFFERED: "Each-way is not offered on this market.",
    ACCOUNT_RESTRICTED: "This account may not place bets.",
  };
  const base = (receipt.code && text[receipt.code]) || "The bet was refused.";
  const extra: string[] = [];
  const details = receipt.details ?? {};
  if (receipt.code === "PRICE_CHANGED" && Array.isArray(details.prices)) {
    for (const p of details.prices as { price: string; requested: string }[]) {
      if (p.price !== p.requested) {
        extra.push(`now ${displayWire(p.price, format)} (you asked for ${displayWire(p.requested, format)})`);
      }
    }
  }
  for (const key of ["maxStake", "suggestedMaxStake", "minStake"]) {
    const value = details[key];
    if (typeof value === "number") {
      extra.push(`${key === "minStake" ? "minimum" : "maximum"} stake ${formatMoney(value, receipt.currency)}`);
    }
  }
  return [base, receipt.message, extra.join("; ")].filter(Boolean).join(" — ");
}
