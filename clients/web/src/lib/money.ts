/**
 * Money: integer minor units (pence, cents), never floats (PROTOCOL.md, Numbers).
 * Formatting and parsing are string and integer operations only.
 */

const SYMBOLS: Record<string, string> = { GBP: "£", EUR: "€", USD: "$", AUD: "A$" };
/** ISO 4217 minor-unit digits where they are not 2. */
const DIGITS: Record<string, number> = { JPY: 0, KRW: 0, BHD: 3, KWD: 3 };

export function minorDigits(currency: string): number {
  return DIGITS[currency] ?? 2;
}

function group(whole: string): string {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** 100000 GBP → "£1,000.00"; −250 → "−£2.50". */
export function formatMoney(minor: bigint | number, currency = "GBP"): string {
  const value = typeof minor === "bigint" ? minor : BigInt(minor);
  const digits = minorDigits(currency);
  const magnitude = value < 0n ? -value : value;
  const scale = 10n ** BigInt(digits);
  const whole = group((magnitude / scale).toString());
  const part = digits > 0 ? "." + (magnitude % scale).toString().padStart(digits, "0") : "";
  const symbol = SYMBOLS[currency];
  const text = symbol ? `${symbol}${whole}${part}` : `${whole}${part} ${currency}`;
  return value < 0n ? `−${text}` : text;
}

/**
 * A stake typed by the customer in major units ("5", "5.5", "5.50", "1,000") as minor
 * units, or null when it is not a plain amount (no exponent, no sign, at most the
 * currency's minor digits).
 */
export function parseStake(text: string, currency = "GBP"): bigint | null {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replace(/^[£€$]/, "").replace(/,/g, "");
  const pattern = digits > 0 ? new RegExp(`^([0-9]{1,10})(?:\\.([0-9]{0,${digits}}))?$`) : /^([0-9]{1,10})$/;
  const match = pattern.exec(cleaned);
  if (!match) return null;
  const part = (match[2] ?? "").padEnd(digits, "0");
  return BigInt(match[1]) * 10n ** BigInt(digits) + (part ? BigInt(part) : 0n);
}
