/** Small display helpers (no money or odds arithmetic here). */

const SPORT_NAMES: Record<string, string> = {
  football: "Football",
  "horse-racing": "Horse racing",
  "greyhound-racing": "Greyhounds",
  tennis: "Tennis",
  golf: "Golf",
  cricket: "Cricket",
  basketball: "Basketball",
};

export function sportName(slug: string): string {
  return SPORT_NAMES[slug] ?? slug.replace(/^sport-/, "Sport ").replace(/-/g, " ");
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function marketKey(marketId: string, selectionId: string): string {
  return `${marketId}|${selectionId}`;
}
