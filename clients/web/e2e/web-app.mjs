/**
 * End-to-end check of the web app in headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core; no browser is downloaded). tests/browser/test_web_app.py
 * starts a real `sportsbook serve` on replayed recordings and runs this script:
 *
 *   WEB_URL=http://127.0.0.1:PORT/ SERVER_PID=… ARTIFACTS=dir node e2e/web-app.mjs
 *
 * Environment:
 *   WEB_URL        the server's page (required)
 *   SERVER_PID     the server's pid: killed with SIGKILL to check the page goes stale
 *   RESTART_CMD    JSON argv to start the server again on the same ports (optional)
 *   RESTART_PIDFILE where to write the restarted server's pid (for the caller's cleanup)
 *   EW_MARKET      a market offering each-way terms
 *   SINGLE_MARKETS JSON list of market ids to try for the plain single, in order
 *   E2E_SCENARIO   "feed-ended" or "settle" instead of the main run (see those functions)
 *   SETTLE_MARKET  scenario "settle": a race replayed in a loop; SETTLE_WINNER its winner
 *   ARTIFACTS      directory for screenshots (default test-artifacts/web)
 *   CHROMIUM       browser binary (default /usr/bin/chromium)
 *
 * Prints one line per step and "e2e: N steps passed" at the end; exits 1 on failure
 * (with a screenshot of the page as it was).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

const WEB_URL = required("WEB_URL");
const ARTIFACTS = resolve(process.env.ARTIFACTS ?? "test-artifacts/web");
const EW_MARKET = process.env.EW_MARKET ?? "1.132153978";
const SINGLE_MARKETS = JSON.parse(process.env.SINGLE_MARKETS ?? '["1.145405534","1.166811431"]');
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`e2e: ${name} is required`);
    process.exit(2);
  }
  return value;
}

const started = Date.now();
let steps = 0;
function step(name, detail = "") {
  steps += 1;
  console.log(`e2e: ok ${steps}. ${name}${detail ? ` — ${detail}` : ""} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  console.log(`e2e: screenshot ${path}`);
  return path;
}

/** Poll `fn` in the page until it returns a truthy value (returned), else throw `what`. */
async function until(page, what, fn, arg, timeoutMs = 15_000) {
  const handle = await page
    .waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 })
    .catch(() => {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    });
  return handle.jsonValue();
}

/** Every visible price button's wire price, keyed by market|selection. */
function pricesOnPage(page) {
  return page.evaluate(() => {
    const out = {};
    for (const b of document.querySelectorAll("button.price[data-market]")) {
      out[`${b.dataset.market}|${b.dataset.selection}`] = b.dataset.price;
    }
    return out;
  });
}

/** Click the first bettable price in a market's view (or `only` that selection); its id or null. */
async function addFirstBettable(page, marketId, skip = [], only = null) {
  await page.goto(`${WEB_URL}#/market/${marketId}`);
  await page.waitForSelector(`[data-market-view="${marketId}"]`, { timeout: 10_000 }).catch(() => null);
  const which = only ? `[data-selection="${only}"]` : "";
  const buttons = page.locator(`[data-market-view="${marketId}"] button.price${which}:not([disabled])`);
  const count = await buttons.count();
  for (let i = 0; i < count; i++) {
    const id = await buttons.nth(i).getAttribute("data-selection");
    if (skip.includes(id)) continue;
    await buttons.nth(i).click();
    return id;
  }
  return null;
}

async function setSlip(page, { stake, policy, eachWay = false }) {
  await page.getByLabel(/Stake per line/).fill(stake);
  await page.locator(`input[name="policy"][value="${policy}"]`).check();
  if (eachWay) await page.getByLabel(/Each-way/).check();
}

async function resultOf(page, requestIdsBefore) {
  // The newest result not seen before this placement.
  return until(
    page,
    "a new bet result",
    (before) => {
      const el = [...document.querySelectorAll("[data-result]")].find((e) => !before.includes(e.dataset.requestId));
      return el ? el.dataset.requestId : null;
    },
    requestIdsBefore,
  );
}

async function requestIds(page) {
  return page.evaluate(() => [...document.querySelectorAll("[data-result]")].map((e) => e.dataset.requestId));
}

async function finalResult(page, requestId, timeoutMs = 20_000) {
  return until(
    page,
    `the final receipt of ${requestId}`,
    (id) => {
      const el = document.querySelector(`[data-request-id="${id}"]`);
      if (!el || ["sending", "pending"].includes(el.dataset.result)) return null;
      return { result: el.dataset.result, code: el.dataset.code, text: el.textContent };
    },
    requestId,
    timeoutMs,
  );
}

/** axe-core's WCAG 2.1 A/AA rules on the page as it is now; any violation fails. */
async function accessible(page, where) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return result.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length}×: ${v.nodes[0]?.target.join(" ")} — ${v.nodes[0]?.failureSummary?.replace(/\s+/g, " ")})`);
  });
  if (violations.length) throw new Error(`accessibility (${where}): ${violations.join("; ")}`);
  return where;
}

async function balance(page) {
  return Number(await page.locator("[data-balance]").getAttribute("data-balance"));
}

/**
 * A winning single's return in pence, exactly: stake × decimal odds, rounded down to the
 * penny (RULES.md: "Round payouts down to the currency's minor unit"). A wire price is
 * decimal ("3.5") or UK fractional ("5/2", i.e. 1 + 5/2); BigInt, never a float.
 */
function winningReturn(stake, wire) {
  let num;
  let den;
  if (wire.includes("/")) {
    const [n, d] = wire.split("/").map((x) => BigInt(x));
    [num, den] = [n + d, d];
  } else {
    const [whole, frac = ""] = wire.split(".");
    [num, den] = [BigInt(whole + frac), 10n ** BigInt(frac.length)];
  }
  return (stake * num) / den; // BigInt division rounds toward zero: down, for a return ≥ 0
}

/**
 * Scenario "settle" (issues #5, #6): a replayed race settles and the return appears.
 *
 * SETTLE_MARKET is a race the server replays in a loop, slowly enough to bet on before
 * it closes, and SETTLE_WINNER the runner its recording marks WINNER. A £2.00 single on
 * the winner (policy ANY; in play, so held 5 s) is accepted; the race closes and the
 * feed's result settles it — no trader, no `sportsbook settle`. Then in My Bets, tab
 * Settled, its card is SETTLED with [data-settlement-return] = stake × struck price
 * rounded down, and the balance (account.stream BALANCE) rises by exactly that return.
 * A bet refused because the race suspended or closed meanwhile is placed again when
 * the loop reopens it.
 */
async function settlementStep(page) {
  const marketId = required("SETTLE_MARKET");
  const winner = required("SETTLE_WINNER");
  const stake = 200n;
  let accepted = null;
  for (let attempt = 1; attempt <= 3 && !accepted; attempt++) {
    await until(page, `${marketId} open with prices`, (id) => {
      const m = window.sportsbook.markets.get(id);
      return m && m.fresh && m.status === "OPEN" && m.selections.some((s) => s.status === "ACTIVE" && s.price);
    }, marketId, 45_000);
    const selection = await addFirstBettable(page, marketId, [], winner);
    if (!selection) throw new Error(`winner ${winner} not bettable in ${marketId}`);
    await setSlip(page, { stake: "2", policy: "ANY" });
    const seen = await requestIds(page);
    await page.click("[data-place-bet]");
    const id = await resultOf(page, seen);
    const outcome = await finalResult(page, id);
    if (outcome.result === "accepted") {
      accepted = await page.evaluate((rid) => window.sportsbook.results.find((r) => r.requestId === rid).receipt, id);
    } else if (["MARKET_SUSPENDED", "MARKET_CLOSED", "MARKET_CHANGED", "SELECTION_NOT_ACTIVE"].includes(outcome.code)) {
      console.log(`e2e: settle bet refused (${outcome.code}): again when the race reopens`);
      await until(page, "the race to close", (mid) => ["CLOSED", "SETTLED"].includes(window.sportsbook.markets.get(mid)?.status), marketId, 45_000);
    } else {
      throw new Error(`settle bet: ${outcome.text}`);
    }
  }
  if (!accepted) throw new Error("could not get a bet on the race accepted");
  const price = accepted.legs[0].price;
  const expected = winningReturn(stake, price);
  const afterStake = accepted.balanceAfter;
  step("bet on the race", `${accepted.betId}: £2.00 on ${winner} @ ${price}, return if it wins ${expected}p`);
  await until(page, `balance ${afterStake} after the stake`, (want) => Number(document.querySelector("[data-balance]")?.dataset.balance) === want, afterStake);

  await page.goto(`${WEB_URL}#/bets`);
  await page.click('[data-tab="SETTLED"]');
  const waitFrom = Date.now();
  const card = await until(
    page,
    `${accepted.betId} SETTLED in My Bets`,
    (betId) => {
      const el = document.querySelector(`.bet-card[data-bet-id="${betId}"][data-status="SETTLED"]`);
      const shown = el?.querySelector("[data-settlement-return]");
      return shown ? { value: shown.dataset.settlementReturn, text: el.textContent } : null;
    },
    accepted.betId,
    45_000,
  );
  if (BigInt(card.value) !== expected) throw new Error(`return ${card.value}, expected ${expected} (£2.00 × ${price} rounded down)`);
  const want = afterStake + Number(expected);
  await until(page, `balance ${want}`, (w) => Number(document.querySelector("[data-balance]")?.dataset.balance) === w, want);
  const legResult = await page.evaluate((betId) => window.sportsbook.bets.get(betId)?.legs[0].result, accepted.betId);
  if (legResult !== "WIN") throw new Error(`leg result ${legResult}, expected WIN`);
  step("race settled from the feed", `${accepted.betId} SETTLED ${((Date.now() - waitFrom) / 1000).toFixed(1)} s later, return ${card.value}p; balance ${afterStake} → ${want} (+${expected}p exactly)`);
  await page.waitForTimeout(1_300); // let the price flashes finish: axe reads colours as they are
  await accessible(page, "my bets, settled");
  await shot(page, "09-settled");
}

/** Scenario "settle": the page, signed in, then {@link settlementStep}. */
async function settleScenario(page) {
  await page.goto(WEB_URL);
  await until(page, "live prices", () => window.sportsbook?.conn === "live" && window.sportsbook.markets.size > 0 && !window.sportsbook.stale);
  await page.click('[data-demo-token="demo-alice-token"]');
  await until(page, "the balance", () => document.querySelector("[data-balance]") !== null);
  step("signed in", `balance ${await balance(page)}`);
  await settlementStep(page);
}

/**
 * Scenario "feed-ended": the server's replay ran once and ended, so the feed is
 * unhealthy (a `status` frame, feedHealthy false, "feed ended"): prices stale, no betting.
 */
async function feedEnded(page) {
  await page.goto(WEB_URL);
  await page.click('[data-demo-token="demo-alice-token"]');
  await until(page, "the balance", () => document.querySelector("[data-balance]") !== null);
  const text = await until(
    page,
    "the stale banner naming the feed",
    () => {
      const banner = document.querySelector("[data-stale-banner=true]");
      return banner && /feed/i.test(banner.textContent) ? banner.textContent : null;
    },
    undefined,
    20_000,
  );
  if (await page.evaluate(() => window.sportsbook.conn !== "live")) throw new Error("the connection should still be up");
  step("feed unhealthy → stale", text);
  await until(page, "every price marked stale", () => {
    const buttons = [...document.querySelectorAll("button.price")];
    return buttons.length > 0 && buttons.every((b) => b.dataset.stale === "true" && b.disabled);
  });
  step("prices stale and not bettable");
  await accessible(page, "stale prices");
  await shot(page, "10-feed-ended-stale");
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "sportsbook-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  let restarted = null;
  try {
    if (process.env.E2E_SCENARIO === "feed-ended" || process.env.E2E_SCENARIO === "settle") {
      await (process.env.E2E_SCENARIO === "settle" ? settleScenario(page) : feedEnded(page));
      if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
      console.log(`e2e: ${steps} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return;
    }
    // 1. The page loads and goes live.
    await page.goto(WEB_URL);
    await until(page, "live prices", () => window.sportsbook?.conn === "live" && window.sportsbook.markets.size > 0 && !window.sportsbook.stale);
    step("page live", `${await page.evaluate(() => window.sportsbook.markets.size)} markets`);

    // 2. Prices on the page change (odds.stream deltas rendered).
    const before = await pricesOnPage(page);
    const moved = await until(
      page,
      "a price on the page to change",
      (initial) => {
        for (const b of document.querySelectorAll("button.price[data-market]")) {
          const key = `${b.dataset.market}|${b.dataset.selection}`;
          if (key in initial && initial[key] && b.dataset.price && initial[key] !== b.dataset.price) {
            return { key, from: initial[key], to: b.dataset.price, flash: b.className };
          }
        }
        return null;
      },
      before,
      20_000,
    );
    step("prices change", `${moved.key}: ${moved.from} → ${moved.to}`);
    await shot(page, "01-live-prices");

    // 3. Odds formats: the switcher redraws the same prices in another format.
    await page.getByLabel("Odds").selectOption("fractional");
    await until(page, "fractional prices", () => [...document.querySelectorAll("button.price .odds")].some((e) => /^\d+\/\d+$/.test(e.textContent.replace(/[▲▼]/g, ""))));
    await page.getByLabel("Odds").selectOption("american");
    await until(page, "american prices", () => [...document.querySelectorAll("button.price .odds")].some((e) => /^[+-]\d+$/.test(e.textContent.replace(/[▲▼]/g, ""))));
    await page.getByLabel("Odds").selectOption("decimal");
    step("odds formats", "decimal → fractional → american → decimal");

    // 4. Sign in with a demo token.
    await page.click('[data-demo-token="demo-alice-token"]');
    await until(page, "the balance", () => document.querySelector("[data-balance]") !== null);
    const initial = await balance(page);
    step("signed in", `balance ${initial}`);
    await page.waitForTimeout(1_300);
    await accessible(page, "events, signed in");

    // The slip's system bets in the page: three legs of three events.
    const three = await page.evaluate(() => {
      const picked = [];
      const events = new Set();
      for (const m of window.sportsbook.markets.values()) {
        if (m.status !== "OPEN" || events.has(m.eventId)) continue;
        const s = m.selections.find((x) => x.status === "ACTIVE" && x.price);
        if (!s) continue;
        events.add(m.eventId);
        picked.push({ marketId: m.marketId, selectionId: s.selectionId });
        if (picked.length === 3) break;
      }
      return picked;
    });
    if (three.length === 3) {
      for (const leg of three) await addFirstBettable(page, leg.marketId, [], leg.selectionId);
      await page.getByLabel(/Stake per line/).fill("1");
      const shown = {};
      for (const [system, lines, total] of [["TRIXIE", "4", "£4.00"], ["PATENT", "7", "£7.00"], ["ACCUMULATOR", "1", "£1.00"], ["SINGLES", "3", "£3.00"]]) {
        await page.getByLabel("Bet type").selectOption(system);
        const got = [await page.locator('[data-summary="lines"]').textContent(), await page.locator('[data-summary="total-stake"]').textContent()];
        if (got[0] !== lines || got[1] !== total) throw new Error(`${system}: ${got.join(", ")}, expected ${lines} lines, ${total}`);
        shown[system] = `${lines} lines ${total}`;
      }
      await page.getByLabel("Bet type").selectOption("PATENT");
      await shot(page, "01b-patent-slip");
      await page.waitForTimeout(1_300); // let the price flashes finish: axe reads colours as they are
      await accessible(page, "market view with a slip");
      await page.getByRole("button", { name: "Clear slip" }).click();
      step("system bets in the slip", Object.entries(shown).map(([k, v]) => `${k} ${v}`).join("; "));
    }

    // 5./6. A single (policy ANY: the demo is in-play, held 5 s, prices move meanwhile) and
    // an each-way single where each-way terms are offered (2 lines, the stake twice). Both
    // are sent at once and are PENDING during the delay. A replayed market can suspend or
    // close meanwhile (its race ends, the loop restarts): such a refusal is retried once.
    const sendSingle = async (markets) => {
      for (const marketId of markets) {
        const selection = await addFirstBettable(page, marketId);
        if (!selection) continue;
        await setSlip(page, { stake: "5", policy: "ANY" });
        const seen = await requestIds(page);
        await page.click("[data-place-bet]");
        return resultOf(page, seen);
      }
      throw new Error(`no bettable selection in ${markets.join(", ")}`);
    };
    const sendEachWay = async () => {
      const selection = await addFirstBettable(page, EW_MARKET);
      if (!selection) throw new Error(`no bettable selection in each-way market ${EW_MARKET}`);
      await setSlip(page, { stake: "2", policy: "ANY", eachWay: true });
      const lines = await page.locator('[data-summary="lines"]').textContent();
      const total = await page.locator('[data-summary="total-stake"]').textContent();
      if (lines !== "2" || total !== "£4.00") throw new Error(`each-way slip shows ${lines} lines, ${total}`);
      const seen = await requestIds(page);
      await page.click("[data-place-bet]");
      return resultOf(page, seen);
    };
    const MARKET_MOVED = ["MARKET_SUSPENDED", "MARKET_CLOSED", "MARKET_CHANGED", "SELECTION_NOT_ACTIVE", "MARKET_NOT_FOUND"];
    let singleId = await sendSingle(SINGLE_MARKETS);
    step("single sent", singleId);
    let ewId = await sendEachWay();
    step("each-way sent", `${ewId}: 2 lines, total £4.00`);
    await shot(page, "02-pending");
    let single = await finalResult(page, singleId);
    let ew = await finalResult(page, ewId);
    if (single.result !== "accepted" && MARKET_MOVED.includes(single.code)) {
      console.log(`e2e: single refused (${single.code}), once more on another market`);
      singleId = await sendSingle([...SINGLE_MARKETS.slice(1), SINGLE_MARKETS[0]]);
      single = await finalResult(page, singleId);
    }
    if (ew.result !== "accepted" && MARKET_MOVED.includes(ew.code)) {
      console.log(`e2e: each-way refused (${ew.code}), once more`);
      await page.waitForTimeout(2_000);
      ewId = await sendEachWay();
      ew = await finalResult(page, ewId);
    }
    if (single.result !== "accepted") throw new Error(`single not accepted: ${single.text}`);
    if (ew.result !== "accepted") throw new Error(`each-way not accepted: ${ew.text}`);
    step("both accepted", "after the in-play delay");
    await shot(page, "03-accepted");

    // 7. The balance drops by exactly the stakes (5.00 + 2 × 2.00), from account.stream.
    await until(page, `balance ${initial - 900}`, (want) => Number(document.querySelector("[data-balance]")?.dataset.balance) === want, initial - 900);
    step("balance", `${initial} → ${initial - 900} (exactly the stakes)`);

    // 8. My Bets shows both, open, with their stakes.
    await page.goto(`${WEB_URL}#/bets`);
    const cards = await until(page, "two open bets in My Bets", () => {
      const found = [...document.querySelectorAll(".bet-card[data-status=ACCEPTED]")];
      return found.length >= 2 ? found.map((e) => e.dataset.betId) : null;
    });
    const receipts = await page.evaluate(() => window.sportsbook.results.filter((r) => r.receipt?.status === "ACCEPTED").map((r) => r.receipt.betId));
    for (const id of receipts) if (!cards.includes(id)) throw new Error(`bet ${id} missing from My Bets (${cards})`);
    await accessible(page, "my bets");
    step("my bets", `${cards.join(", ")}; no axe WCAG A/AA violations on events, market + slip, my bets`);
    await shot(page, "04-my-bets");

    // 9. Policy NONE and a price that moved since it was added: refused, with the reason.
    let rejected = null;
    for (let attempt = 0; attempt < 6 && !rejected; attempt++) {
      // The selection whose price has moved most often so far, in a market still open.
      const fast = await page.evaluate(() => {
        const found = [];
        for (const m of window.sportsbook.markets.values()) {
          if (m.status !== "OPEN" || !m.fresh) continue;
          for (const s of m.selections) if (s.status === "ACTIVE" && s.price) found.push([s.moves, m.marketId, s.selectionId]);
        }
        found.sort((a, b) => b[0] - a[0]);
        return found.slice(0, 6).map(([, marketId, selectionId]) => ({ marketId, selectionId }));
      });
      const pick = fast[attempt % Math.max(1, fast.length)];
      if (!pick) throw new Error("no open market with prices");
      const selection = await addFirstBettable(page, pick.marketId, [], pick.selectionId);
      if (!selection) continue;
      const movedInSlip = await page
        .waitForSelector("[data-price-moved]", { timeout: 6_000 })
        .then(() => true)
        .catch(() => false);
      if (!movedInSlip || (await page.locator("[data-place-bet]").isDisabled())) {
        await page.getByRole("button", { name: "Clear slip" }).click();
        continue;
      }
      await setSlip(page, { stake: "1", policy: "NONE" });
      const seen = await requestIds(page);
      await page.click("[data-place-bet]");
      const id = await resultOf(page, seen);
      const outcome = await finalResult(page, id);
      if (outcome.result === "rejected" && (outcome.code === "PRICE_CHANGED" || outcome.code === "MARKET_CHANGED")) rejected = outcome;
      else console.log(`e2e: NONE attempt ${attempt + 1} gave ${outcome.result} ${outcome.code}: ${outcome.text}`);
    }
    if (!rejected) throw new Error("could not see a NONE bet refused for a price change");
    if (!/price changed|market changed/i.test(rejected.text)) throw new Error(`no reason shown: ${rejected.text}`);
    step("NONE refused", rejected.text.replace(/\s+/g, " ").slice(0, 160));
    await shot(page, "05-rejected-price-changed");

    // 10. Kill the server (no close frame): stale prices and no betting within the keepalive window.
    const pid = Number(process.env.SERVER_PID);
    if (pid) {
      await page.goto(`${WEB_URL}#/`);
      await until(page, "live again on the events page", () => !window.sportsbook.stale);
      const open = await page.evaluate(() => [...window.sportsbook.markets.values()].find((m) => m.status === "OPEN" && m.selections.some((s) => s.status === "ACTIVE" && s.price))?.marketId);
      await addFirstBettable(page, open);
      await page.getByLabel(/Stake per line/).fill("1");
      await page.goto(`${WEB_URL}#/`);
      const killedAt = Date.now();
      process.kill(pid, "SIGKILL");
      await until(page, "the stale banner", () => document.querySelector("[data-stale-banner=true]") !== null, undefined, 30_000);
      const staleAfter = Date.now() - killedAt;
      await until(page, "every price marked stale", () => [...document.querySelectorAll("button.price")].every((b) => b.dataset.stale === "true"));
      if (!(await page.locator("[data-place-bet]").isDisabled())) throw new Error("betting still enabled while stale");
      const why = await page.locator("[data-slip-blocked]").getAttribute("data-slip-blocked");
      step("server killed → stale", `banner after ${staleAfter} ms; place button disabled (${why})`);
      await shot(page, "06-stale-after-kill");

      // 11. The server comes back: the page reconnects by itself and resumes the stream.
      if (process.env.RESTART_CMD) {
        const [command, ...args] = JSON.parse(process.env.RESTART_CMD);
        restarted = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"] });
        if (process.env.RESTART_PIDFILE) writeFileSync(process.env.RESTART_PIDFILE, String(restarted.pid));
        const back = Date.now();
        await until(page, "live prices after the restart", () => !window.sportsbook.stale && [...window.sportsbook.markets.values()].some((m) => m.fresh), undefined, 30_000);
        await until(page, "the place button enabled again", () => !document.querySelector("[data-place-bet]")?.disabled, undefined, 15_000);
        step("server back → live", `reconnected after ${Date.now() - back} ms`);
        await shot(page, "07-reconnected");
      }
    }

    // A phone-sized viewport: the same page, one column.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${WEB_URL}#/`);
    await page.waitForTimeout(300);
    await shot(page, "08-phone");
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    console.log(`e2e: ${steps} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    console.error(`e2e: FAILED at step ${steps + 1}: ${error.message}`);
    if (errors.length) console.error(`e2e: page errors: ${errors.join("; ")}`);
    await shot(page, "failure").catch(() => undefined);
    process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    if (restarted && restarted.exitCode === null) {
      restarted.kill("SIGTERM");
      await new Promise((done) => {
        const timer = setTimeout(() => {
          restarted.kill("SIGKILL");
          done();
        }, 5_000);
        restarted.on("exit", () => {
          clearTimeout(timer);
          done();
        });
      });
    }
  }
}

await main();
