"""Largest-remainder (Hamilton) allocation: split an integer amount so the parts add up exactly.

Every split of money in Megabox goes through ``allocate``. Only integer arithmetic is used,
so a total of any size is split exactly.

The rule, for a total T and weights w (sum W):

1. each part starts at the floor of its exact share T·w/W;
2. the minor units still missing (fewer than the number of parts) go one each to the parts
   with the largest remainders;
3. ties between equal remainders go to the lower index, so the result is deterministic and
   the caller decides who wins a tie by the order of the weights.

Each part is therefore the floor or the ceiling of its exact share, and a part with weight 0
gets 0. A negative total is split as its absolute value and every part negated, so a refund
is split exactly as the sale it undoes.
"""

from __future__ import annotations

from collections.abc import Sequence

from config import BPS_WHOLE


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` by largest remainder (see the module docstring).

    Raises ValueError when there are no weights, a weight is negative, or all are zero, and
    TypeError when the total or a weight is not an int.
    """
    _require_int(total, "total")
    for weight in weights:
        _require_int(weight, "weight")
        if weight < 0:
            raise ValueError("allocation weights cannot be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("allocation needs at least one positive weight")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        floor, remainder = divmod(magnitude * weight, weight_sum)
        floors.append(floor)
        remainders.append(remainder)
    missing = magnitude - sum(floors)
    # The remainders add up to missing·W and each is below W, so at least ``missing`` of them
    # are non-zero: the extra units only ever go to parts whose exact share is not whole.
    winners = sorted(range(len(floors)), key=lambda index: (-remainders[index], index))[:missing]
    for index in winners:
        floors[index] += 1
    return [sign * part for part in floors]


def split_bps(amount: int, bps: int) -> tuple[int, int]:
    """Split ``amount`` into (artist, platform): the artist's part is ``bps`` basis points.

    The artist's part is amount·bps/10000 rounded by ``allocate``: an exact half goes to the
    artist (the lower index). The platform gets the rest, so the two always add up to the
    amount. Raises ValueError for bps outside 0..10000.
    """
    _require_int(bps, "bps")
    if not 0 <= bps <= BPS_WHOLE:
        raise ValueError(f"basis points must be 0 to {BPS_WHOLE}")
    artist, platform = allocate(amount, [bps, BPS_WHOLE - bps])
    return artist, platform


def _require_int(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
