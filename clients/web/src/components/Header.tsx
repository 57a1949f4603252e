import { useId, useState } from "react";
import { formatMoney } from "../lib/money";
import { DISPLAY_FORMATS, type OddsFormat } from "../lib/odds";
import { useStore } from "../state/context";

const DEMO_TOKENS = [
  { label: "Alice (demo)", token: "demo-alice-token" },
  { label: "Bob (demo)", token: "demo-bob-token" },
];

export function Header({ route }: { route: string }) {
  const store = useStore();
  const ids = useId();
  const live = !store.stale;
  return (
    <header className="top">
      <a href="#/" className="brand">
        Sportsbook
      </a>
      <nav aria-label="Main">
        <a href="#/" aria-current={route === "events" || route === "market" ? "page" : undefined}>
          Sports
        </a>
        <a href="#/bets" aria-current={route === "bets" ? "page" : undefined}>
          My bets
        </a>
      </nav>
      <div className="conn" data-conn={store.conn} data-stale={store.stale ? "true" : "false"}>
        <span className={`dot ${live ? "ok" : "bad"}`} aria-hidden="true" />
        {live ? "Live" : store.conn === "live" ? "Stale" : store.conn === "connecting" && store.attempt === 0 ? "Connecting" : "Offline"}
      </div>
      <div className="format">
        <label htmlFor={`${ids}-fmt`}>Odds</label>
        <select id={`${ids}-fmt`} value={store.oddsFormat} onChange={(e) => store.setOddsFormat(e.target.value as OddsFormat)}>
          {DISPLAY_FORMATS.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
      <Account />
    </header>
  );
}

function Account() {
  const store = useStore();
  const ids = useId();
  const [text, setText] = useState("");
  if (store.token) {
    return (
      <div className="account">
        {store.account ? (
          <>
            <span className="who">{store.account.accountId}</span>
            <span className="balance" aria-live="polite" data-balance={store.account.balance}>
              Balance <strong>{formatMoney(store.account.balance, store.account.currency)}</strong>
            </span>
          </>
        ) : (
          <span className="muted">Signing in…</span>
        )}
        <button type="button" onClick={() => store.setToken(null)}>
          Sign out
        </button>
      </div>
    );
  }
  return (
    <form
      className="account signin"
      onSubmit={(e) => {
        e.preventDefault();
        store.setToken(text);
      }}
    >
      <label htmlFor={`${ids}-token`}>Token</label>
      <input
        id={`${ids}-token`}
        name="token"
        type="password"
        autoComplete="off"
        value={text}
        onChange={(e) => setText(e.target.value)}
        placeholder="demo-alice-token"
      />
      <button type="submit" disabled={!text.trim()}>
        Sign in
      </button>
      {DEMO_TOKENS.map((d) => (
        <button key={d.token} type="button" className="link" onClick={() => store.setToken(d.token)} data-demo-token={d.token}>
          {d.label}
        </button>
      ))}
      {store.authError && (
        <p className="warn small" role="alert">
          {store.authError}
        </p>
      )}
    </form>
  );
}
