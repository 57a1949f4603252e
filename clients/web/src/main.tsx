import "./polyfills"; // first: rsocket-js needs the Buffer global
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { StoreContext } from "./state/context";
import { Store } from "./state/store";
import "./styles.css";

/** ws://<this host>/rsocket (the server serves this page), or `?ws=` to point elsewhere. */
function serverUrl(): string {
  const override = new URLSearchParams(window.location.search).get("ws");
  if (override) return override;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/rsocket`;
}

const store = new Store(serverUrl());
store.start();
(window as unknown as { sportsbook: Store }).sportsbook = store; // for the e2e test and debugging

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>
  </StrictMode>,
);
