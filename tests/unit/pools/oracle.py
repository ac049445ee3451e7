"""An independent oracle for pool splits: the exact shares as Fractions, straight from the
definitions, and largest remainder with the documented tie-break."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction

PRO_RATA = "pro_rata"
USER_CENTRIC = "user_centric"


def exact_shares(
    plays: Sequence[tuple[Hashable, Hashable]],
    impressions: Mapping[Hashable, int],
    pool: int,
    model: str,
) -> dict[Hashable, Fraction]:
    """Each track's exact share of ``pool``: plays are (listener, track) pairs."""
    per_track = Counter(track for _, track in plays)
    total = sum(per_track.values())
    if total == 0:
        return {}
    seen = sum(impressions.values())
    if model == PRO_RATA or seen == 0:
        return {track: Fraction(pool * count, total) for track, count in per_track.items()}
    shares = dict.fromkeys(per_track, Fraction(0))
    listeners = {listener for listener, _ in plays}
    for listener in listeners:
        theirs = Counter(track for who, track in plays if who == listener)
        revenue = Fraction(pool * impressions.get(listener, 0), seen)
        for track, count in theirs.items():
            shares[track] += revenue * count / sum(theirs.values())
    unplayed = sum(n for listener, n in impressions.items() if listener not in listeners)
    for track, count in per_track.items():
        shares[track] += Fraction(pool * unplayed, seen) * count / total
    return shares


def largest_remainder(shares: Mapping[Hashable, Fraction], pool: int) -> dict[Hashable, int]:
    """Floors, then one unit each to the largest remainders; ties to the smaller share, then
    the lower key."""
    amounts = {track: math.floor(share) for track, share in shares.items()}
    missing = pool - sum(amounts.values()) if shares else 0
    order = sorted(shares, key=lambda t: (-(shares[t] - amounts[t]), shares[t], t))
    for track in order[:missing]:
        amounts[track] += 1
    return amounts
