"""The server-rendered SVG bar chart: valid XML, accessible, one proportional bar per point."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.charts import CHART_HEIGHT, CHART_WIDTH, NO_DATA_TEXT, svg_bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(points: list[tuple[str, int]], title: str = "Plays per day") -> ET.Element:
    return ET.fromstring(str(svg_bar_chart(points, title=title, label=lambda v: f"{v} plays")))


def _bars(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f"{SVG}rect")


def test_one_bar_per_point_with_heights_proportional_to_values() -> None:
    points = [("2024-05-01", 10), ("2024-05-02", 0), ("2024-05-03", 40), ("2024-05-04", 20)]

    bars = _bars(_parse(points))

    assert [bar.get("data-key") for bar in bars] == [key for key, _ in points]
    heights = [float(bar.get("height", "")) for bar in bars]
    assert heights[1] == 0
    assert heights[2] / heights[0] == pytest.approx(4, rel=1e-3)
    assert heights[3] / heights[0] == pytest.approx(2, rel=1e-3)
    assert max(heights) < CHART_HEIGHT


def test_bars_stand_on_one_baseline_in_order_left_to_right() -> None:
    bars = _bars(_parse([("a", 1), ("b", 3), ("c", 2)]))

    bottoms = {round(float(b.get("y", "")) + float(b.get("height", "")), 2) for b in bars}
    xs = [float(b.get("x", "")) for b in bars]
    assert len(bottoms) == 1
    assert xs == sorted(xs)
    assert xs[-1] + float(bars[-1].get("width", "")) <= CHART_WIDTH


def test_negative_values_hang_below_the_zero_line() -> None:
    bars = _bars(_parse([("sale", 30), ("refund", -10)]))

    sale, refund = bars
    zero = float(sale.get("y", "")) + float(sale.get("height", ""))
    assert float(refund.get("y", "")) == pytest.approx(zero)
    assert float(sale.get("height", "")) / float(refund.get("height", "")) == pytest.approx(3)
    assert "bar-negative" in refund.get("class", "")


def test_chart_is_accessible_and_scales() -> None:
    svg = _parse([("2024-05-01", 5), ("2024-05-02", 7)], title="Sales <by> day")

    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Sales <by> day"
    assert svg.findtext(f"{SVG}title") == "Sales <by> day"
    assert "highest 7 plays on 2024-05-02" in (svg.findtext(f"{SVG}desc") or "")
    assert (svg.get("width"), svg.get("height")) == (str(CHART_WIDTH), str(CHART_HEIGHT))
    assert svg.get("viewBox") == f"0 0 {CHART_WIDTH} {CHART_HEIGHT}"
    tooltips = [bar.findtext(f"{SVG}title") for bar in _bars(svg)]
    assert tooltips == ["2024-05-01: 5 plays", "2024-05-02: 7 plays"]


def test_keys_are_escaped() -> None:
    svg = _parse([("<script>alert(1)</script>", 3)])

    assert svg.find(f".//{SVG}script") is None
    assert _bars(svg)[0].get("data-key") == "<script>alert(1)</script>"


@pytest.mark.parametrize("points", [[], [("2024-05-01", 0), ("2024-05-02", 0)]])
def test_an_empty_or_all_zero_series_says_there_is_no_data(
    points: list[tuple[str, int]],
) -> None:
    svg = _parse(points)

    assert _bars(svg) == []
    assert NO_DATA_TEXT in [text.text for text in svg.iter(f"{SVG}text")]
    assert svg.findtext(f"{SVG}title") == "Plays per day"
    assert svg.get("role") == "img"
