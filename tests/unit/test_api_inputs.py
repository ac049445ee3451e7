"""The request bounds in app.api.inputs, and the footer's share, without HTTP."""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import artist_share_percent
from app.api.inputs import digits_at_most, holds_nul, json_depth, nests_deeper_than

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="[]{}\"\\ab,:\x00u0"),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20,
)


def _reference_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_json_depth_matches_the_parsed_document(value):
    text = json.dumps(value)
    assert json_depth(text) == _reference_depth(value)
    assert json_depth(text.encode()) == _reference_depth(value)


@pytest.mark.parametrize(
    ("document", "depth"),
    [("", 0), ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('"[[[["', 0), ('["\\"[[", []]', 2),
     ('{"k\\\\": "[["}', 1)],
)  # fmt: skip
def test_json_depth_ignores_brackets_in_strings(document, depth):
    assert json_depth(document) == depth


def test_a_hundred_thousand_brackets_are_measured_without_recursion():
    assert nests_deeper_than("[" * 100_000, 32)
    assert not nests_deeper_than("[" * 32 + "]" * 32, 32)
    assert not nests_deeper_than("[1, 2, 3]" * 10, 32)


@pytest.mark.parametrize("limit", [0, 7, 10, 99, 100, 305, 2**31 - 1, 2**63 - 1])
def test_digits_at_most_matches_exactly_zero_to_the_limit(limit):
    pattern = re.compile(digits_at_most(limit))
    for number in [*range(0, 1100), limit - 1, limit, limit + 1, limit * 10 + 9, 10 ** len(str(limit))]:
        if number >= 0:
            assert (pattern.fullmatch(str(number)) is not None) is (number <= limit), number
    assert pattern.fullmatch("-1") is None and pattern.fullmatch("١") is None


@pytest.mark.parametrize(("bps", "shown"), [(9000, "90"), (8750, "87.5"), (10000, "100"), (1, "0.01"), (0, "0")])
def test_artist_share_percent_reads_like_a_person_writes_it(bps, shown):
    assert artist_share_percent(bps) == shown


@pytest.mark.parametrize(
    ("document", "nul"),
    [('"a"', False), ('"\\u0000"', True), ('"\\\\u0000"', False), ('"\\\\\\u0000"', True), ('{"\\u0000": 1}', True),
     ('"\\u00000"', True), ('"u0000"', False)],
)  # fmt: skip
def test_holds_nul_finds_only_unescaped_nul_escapes(document, nul):
    assert holds_nul(document) is nul
    assert _strings_hold_nul(json.loads(document)) is nul


def _strings_hold_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_strings_hold_nul(k) or _strings_hold_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_strings_hold_nul(v) for v in value)


@given(json_values)
def test_holds_nul_agrees_with_the_parsed_document(value):
    assert holds_nul(json.dumps(value)) is _strings_hold_nul(value)
