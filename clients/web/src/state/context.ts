import { createContext, useContext, useSyncExternalStore } from "react";
import type { Store } from "./store";

export const StoreContext = createContext<Store | null>(null);

/** The store, re-rendering the caller on every change (batched per microtask). */
export function useStore(): Store {
  const store = useContext(StoreContext);
  if (!store) throw new Error("no store");
  useSyncExternalStore(store.subscribe, store.getVersion, store.getVersion); // the third: server rendering (the tests)
  return store;
}

/** The store without subscribing (for memoised children that get what they need as props). */
export function useStoreRef(): Store {
  const store = useContext(StoreContext);
  if (!store) throw new Error("no store");
  return store;
}
