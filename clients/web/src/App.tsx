import { useEffect, useState } from "react";
import { BetSlip } from "./components/BetSlip";
import { EventsView } from "./components/EventsView";
import { Header } from "./components/Header";
import { MarketView } from "./components/MarketView";
import { MyBets } from "./components/MyBets";
import { useStore } from "./state/context";

function parseRoute(hash: string): { name: "events" | "market" | "bets"; id?: string } {
  const market = /^#\/market\/(.+)$/.exec(hash);
  if (market) return { name: "market", id: decodeURIComponent(market[1]) };
  if (hash === "#/bets") return { name: "bets" };
  return { name: "events" };
}

export function App() {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [route.name, route.id]);

  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <Header route={route.name} />
      <StaleBanner />
      <div className="layout">
        <main id="main" tabIndex={-1}>
          {route.name === "market" && route.id ? <MarketView marketId={route.id} /> : route.name === "bets" ? <MyBets /> : <EventsView />}
        </main>
        <aside aria-label="Bet slip" className="side" id="betslip">
          <BetSlip />
        </aside>
      </div>
      <SlipJump />
    </>
  );
}

/** Says, in words, when prices cannot be trusted (and so betting is paused). */
function StaleBanner() {
  const store = useStore();
  const reason = store.staleReason;
  return (
    <div
      className={reason ? "banner stale" : "banner ok"}
      role="status"
      aria-live="polite"
      data-stale-banner={reason ? "true" : "false"}
      title={reason && store.lastError ? store.lastError : undefined}
    >
      {reason ? `${reason} Betting is paused.` : <span className="sr-only">Prices are live.</span>}
    </div>
  );
}

/** On a phone the slip is below the prices: a bar at the bottom jumps to it. */
function SlipJump() {
  const store = useStore();
  const legs = store.slip.legs.length;
  const pending = store.results.filter((r) => r.state === "SENDING" || r.state === "PENDING").length;
  if (legs === 0 && pending === 0) return null;
  return (
    <a href="#betslip" className="slip-jump" onClick={(e) => {
      e.preventDefault();
      document.getElementById("betslip")?.scrollIntoView({ behavior: "smooth" });
      document.getElementById("betslip")?.querySelector<HTMLElement>("input, select, button")?.focus({ preventScroll: true });
    }}>
      Bet slip ({legs}){pending > 0 ? ` · ${pending} pending` : ""}
    </a>
  );
}
