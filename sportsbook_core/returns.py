"""Returns on a stake: the one rounding rule for money (STYLE.md 1, RULES.md §7).

PROTOCOL.md, Numbers: "Returns are computed exactly and rounded **down** to the
minor unit once, at the end (never per leg or per line)."
"""

from __future__ import annotations

from fractions import Fraction


def potential_return(stake_minor: int, odds: Fraction) -> int:
    """``stake × odds`` in minor units: the exact product, rounded down once.

    ``odds`` is the exact decimal odds (or the exact combined factor of several
    legs); never pre-round it. Stake 300 at 1/3 (odds 4/3) returns 400, whereas
    rounding the odds to 1.33 first would give 399 (FIELD_CASES.md B07).
    """
    if isinstance(stake_minor, bool) or not isinstance(stake_minor, int):
        raise TypeError(f"stake must be an int of minor units, got {type(stake_minor).__name__}")
    if not isinstance(odds, Fraction):
        raise TypeError(f"odds must be an exact Fraction, got {type(odds).__name__}")
    if stake_minor < 0:
        raise ValueError(f"stake must not be negative, got {stake_minor}")
    if odds < 0:
        raise ValueError(f"odds must not be negative, got {odds}")
    return (stake_minor * odds.numerator) // odds.denominator
