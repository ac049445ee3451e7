"""Bar charts drawn on the server as inline SVG.

The dashboard and the HTML statement show series such as plays or sales per day. Drawing
them here keeps pages free of JavaScript and vendored libraries, and a statement saved to
disk still shows its charts. The SVG is accessible: ``role="img"`` with a ``<title>``, an
``aria-label`` and a ``<desc>`` summing the series up, and every bar carries its own
``<title>`` (the tooltip and what a screen reader announces for it).

The ``width`` and ``height`` attributes give the natural size; the ``viewBox`` lets CSS
(``max-width: 100%; height: auto``) scale the chart down on narrow screens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

CHART_WIDTH = 720
CHART_HEIGHT = 200
# Room around the plot for the scale labels (left) and the first and last keys (bottom).
MARGIN_LEFT = 64
MARGIN_RIGHT = 8
MARGIN_TOP = 12
MARGIN_BOTTOM = 24
# Fraction of each slot left empty between bars, so neighbouring bars stay distinct.
BAR_GAP = 0.2
NO_DATA_TEXT = "No data for this period"
# Presentation attributes (the site's accent, danger and muted colours), so a chart looks
# right in a page without the stylesheet, such as a saved statement; CSS may override them.
BAR_FILL = "#0f766e"
NEGATIVE_BAR_FILL = "#b42318"
TEXT_STYLE = 'fill="#6b665e" font-size="11" font-family="sans-serif"'


def svg_bar_chart(
    points: Sequence[tuple[str, int]], *, title: str, label: Callable[[int], str]
) -> Markup:
    """An SVG bar chart of ``points`` (key, value) in their order, one bar per point.

    Bar heights are proportional to the values; negative values (a day with more refunds
    than sales) hang below the zero line. ``label`` turns a value into text, e.g. a money
    formatter, for the scale and the tooltips. An empty or all-zero series renders the
    frame with a "no data" message rather than an empty box.
    """
    values = [value for _, value in points]
    if not any(values):
        return _frame(title, _no_data_summary(points), _no_data_body())
    top = max(max(values), 0)
    bottom = min(min(values), 0)
    return _frame(title, _summary(points, label), _bars(points, top, bottom, label))


def _frame(title: str, description: str, body: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' width="{CHART_WIDTH}" height="{CHART_HEIGHT}"'
        f' viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{body}</svg>"
    )


def _no_data_summary(points: Sequence[tuple[str, int]]) -> str:
    if not points:
        return NO_DATA_TEXT + "."
    return f"{NO_DATA_TEXT}: nothing from {points[0][0]} to {points[-1][0]}."


def _no_data_body() -> str:
    middle_x = (MARGIN_LEFT + CHART_WIDTH - MARGIN_RIGHT) / 2
    middle_y = (MARGIN_TOP + CHART_HEIGHT - MARGIN_BOTTOM) / 2
    return (
        _baseline(CHART_HEIGHT - MARGIN_BOTTOM)
        + f'<text class="chart-empty" x="{middle_x:.0f}" y="{middle_y:.0f}"'
        f' text-anchor="middle" {TEXT_STYLE}>{escape(NO_DATA_TEXT)}</text>'
    )


def _summary(points: Sequence[tuple[str, int]], label: Callable[[int], str]) -> str:
    peak_key, peak = max(points, key=lambda point: point[1])
    total = sum(value for _, value in points)
    return (
        f"{len(points)} bars from {points[0][0]} to {points[-1][0]}; "
        f"total {label(total)}; highest {label(peak)} on {peak_key}."
    )


def _bars(
    points: Sequence[tuple[str, int]], top: int, bottom: int, label: Callable[[int], str]
) -> str:
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    span = top - bottom
    zero_y = MARGIN_TOP + plot_height * top / span
    slot = plot_width / len(points)
    bar_width = slot * (1 - BAR_GAP)
    parts = [_scale(top, bottom, label), _baseline(zero_y)]
    for index, (key, value) in enumerate(points):
        height = plot_height * abs(value) / span
        y = zero_y - height if value > 0 else zero_y
        x = MARGIN_LEFT + index * slot + (slot - bar_width) / 2
        negative = value < 0
        css_class = "bar bar-negative" if negative else "bar"
        fill = NEGATIVE_BAR_FILL if negative else BAR_FILL
        parts.append(
            f'<rect class="{css_class}" fill="{fill}" x="{x:.2f}" y="{y:.2f}"'
            f' width="{bar_width:.2f}" height="{height:.2f}" data-key="{escape(key)}"'
            f' data-value="{value}"><title>{escape(key)}: {escape(label(value))}</title></rect>'
        )
    parts.append(_key_labels(points))
    return "".join(parts)


def _scale(top: int, bottom: int, label: Callable[[int], str]) -> str:
    """The highest (and lowest, if negative) value, written left of the plot."""
    x = MARGIN_LEFT - 6
    marks = [(MARGIN_TOP + 4, top)]
    if bottom < 0:
        marks.append((CHART_HEIGHT - MARGIN_BOTTOM, bottom))
    return "".join(
        f'<text class="chart-scale" x="{x}" y="{y}" text-anchor="end" {TEXT_STYLE}>'
        f"{escape(label(value))}</text>"
        for y, value in marks
    )


def _baseline(y: float) -> str:
    return (
        f'<line class="chart-axis" x1="{MARGIN_LEFT}" y1="{y:.2f}"'
        f' x2="{CHART_WIDTH - MARGIN_RIGHT}" y2="{y:.2f}" stroke="#cfc9bd"/>'
    )


def _key_labels(points: Sequence[tuple[str, int]]) -> str:
    """The first and last keys under the plot, so the reader sees the range covered."""
    y = CHART_HEIGHT - 6
    right = CHART_WIDTH - MARGIN_RIGHT
    first = (
        f'<text class="chart-key" x="{MARGIN_LEFT}" y="{y}" text-anchor="start" {TEXT_STYLE}>'
        f"{escape(points[0][0])}</text>"
    )
    if len(points) == 1:
        return first
    return first + (
        f'<text class="chart-key" x="{right}" y="{y}" text-anchor="end" {TEXT_STYLE}>'
        f"{escape(points[-1][0])}</text>"
    )
