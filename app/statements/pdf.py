"""A statement as PDF, drawn with reportlab from its content alone.

The document is made with ``invariant=1``: reportlab then writes a fixed creation date and
document id instead of the time and a random one, so the same content gives the same bytes
(a frozen statement's PDF can be checked against an earlier download byte for byte).
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.ledger.money import exponent
from app.statements.content import Line, StatementContent, StatementView

MARGIN = 15 * mm
CHART_HEIGHT = 55 * mm
ACCENT = colors.HexColor("#0f766e")
RULE = colors.HexColor("#cfc9bd")
# What the sales columns mean; the HTML says the same.
SALES_NOTE = (
    "Commission is the platform's share of what buyers paid, extras included. On every sale, "
    "what was paid less the commission and the fee is the amount."
)
_STYLES = getSampleStyleSheet()
BODY = _STYLES["BodyText"]
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
HEADING = _STYLES["Heading2"]
TITLE = _STYLES["Title"]
TABLE_STYLE = TableStyle(
    [
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def pdf_document(view: StatementView, detail_lines_max: int) -> bytes:
    """The statement's PDF: the totals, a chart of the earnings by day, the ad share, the
    lines by item and, when there are at most ``detail_lines_max``, each line."""
    content = view.content
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Statement {content.period}, {content.artist_name} ({content.currency})",
        author="Megabox",
        creator="Megabox",
        invariant=1,
    )
    story: list[Flowable] = [
        Paragraph(escape(f"Statement {content.period}: {content.artist_name}"), TITLE),
        Paragraph(escape(_status(view)), SMALL),
        Spacer(1, 4 * mm),
        _summary(content),
        Spacer(1, 4 * mm),
        _chart(content),
    ]
    story += _ads(content)
    story += _by_item(content)
    story += _lines(content, detail_lines_max)
    document.build(story)
    return buffer.getvalue()


def _status(view: StatementView) -> str:
    content = view.content
    span = f"{content.span_label()}, in {content.currency}."
    if view.provisional:
        return f"Provisional: the period is open and these figures may still change. {span}"
    return f"Final: the period is closed. {span} Content hash (SHA-256): {view.content_hash}"


def _summary(content: StatementContent) -> Table:
    money = content.money
    rows = [["", content.currency], ["Opening balance", money(content.opening_minor).format()]]
    rows += [[label, money(total).format()] for label, total in content.labelled_totals()]
    rows.append(["Closing balance", money(content.closing_minor).format()])
    table = Table(rows, colWidths=[70 * mm, 40 * mm], hAlign="LEFT")
    table.setStyle(TABLE_STYLE)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.6, RULE),
            ]
        )
    )
    return table


def _chart(content: StatementContent) -> Drawing:
    """The earnings by day as a bar chart, in major units."""
    days = content.earnings_by_day()
    # Bar heights only: the figures on the page are exact, from integer minor units.
    scale = 10.0 ** -exponent(content.currency)
    width = A4[0] - 2 * MARGIN
    drawing = Drawing(width, CHART_HEIGHT)
    chart = VerticalBarChart()
    chart.x, chart.y = 40, 20
    chart.width, chart.height = width - 50, CHART_HEIGHT - 40
    chart.data = [[minor * scale for _, minor in days]]
    chart.categoryAxis.categoryNames = [day[8:] for day, _ in days]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.forceZero = True
    chart.bars[0].fillColor = ACCENT
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    title = f"Earnings by day ({content.currency})"
    drawing.add(String(40, CHART_HEIGHT - 12, title, fontName="Helvetica-Bold", fontSize=9))
    return drawing


def _ads(content: StatementContent) -> list[Flowable]:
    story: list[Flowable] = []
    for share in content.ads:
        story.append(Paragraph(escape(f"Ad share of {share.period}"), HEADING))
        story.append(
            Paragraph(
                escape(
                    f"{share.plays:,} counted play{'' if share.plays == 1 else 's'} of "
                    f"{share.period_plays:,} in the period, "
                    f"{share.model.replace('_', ' ')} model, "
                    f"{content.rate_per_1000(share).format()} per 1,000 plays: "
                    f"{content.money(share.amount_minor).format()}."
                ),
                BODY,
            )
        )
        rows: list[list[object]] = [["Track", "Plays", "Amount"]]
        rows += [
            [Paragraph(escape(track.title), SMALL), f"{track.plays:,}",
             content.money(track.amount_minor).format()]
            for track in share.tracks
        ]
        story.append(_table(rows, [110 * mm, 30 * mm, 35 * mm]))
    return story


def _by_item(content: StatementContent) -> list[Flowable]:
    totals = content.sales_by_item()
    if not totals:
        return [Paragraph("No sales in this period.", BODY)]
    rows: list[list[object]] = [["Item", "Qty", "Paid", "Extra", "Commission", "Fee", "Amount"]]
    rows += [
        [
            Paragraph(escape(_item(total.item, total.item_type)), SMALL),
            f"{total.quantity:,}" if total.quantity else "",
            _amount(content, total.price_paid_minor), _blank_if_zero(content, total.extra_minor),
            _amount(content, total.commission_minor), _blank_if_zero(content, total.fee_minor),
            _amount(content, total.amount_minor),
        ]  # fmt: skip
        for total in totals
    ]
    widths = [64 * mm, 12 * mm, 20 * mm, 20 * mm, 22 * mm, 20 * mm, 22 * mm]
    note = Paragraph(SALES_NOTE, SMALL)
    return [Paragraph("Sales by item", HEADING), _table(rows, widths), note]


def _lines(content: StatementContent, detail_lines_max: int) -> list[Flowable]:
    if not content.lines:
        return []
    if len(content.lines) > detail_lines_max:
        note = f"{len(content.lines):,} lines: the CSV download lists each one."
        return [Paragraph("Lines", HEADING), Paragraph(escape(note), BODY)]
    rows: list[list[object]] = [
        ["Date", "Type", "Item", "Reference", "Paid", "Commission", "Fee", "Amount"]
    ]
    rows += [
        [
            line.day, line.label, Paragraph(escape(line.item), SMALL),
            Paragraph(escape(_reference(line)), SMALL),
            _amount(content, line.price_paid_minor), _amount(content, line.commission_minor),
            _blank_if_zero(content, line.fee_minor), _amount(content, line.amount_minor),
        ]  # fmt: skip
        for line in content.lines
    ]
    widths = [18 * mm, 22 * mm, 40 * mm, 23 * mm, 18 * mm, 22 * mm, 15 * mm, 22 * mm]
    return [Paragraph("Lines", HEADING), _table(rows, widths)]


# Blanks as on the page: no figure where a line has none, and no zero fee or extra.
def _amount(content: StatementContent, minor: int | None) -> str:
    return "" if minor is None else content.money(minor).format()


def _blank_if_zero(content: StatementContent, minor: int | None) -> str:
    return _amount(content, minor) if minor else ""


def _item(item: str, item_type: str) -> str:
    return f"{item} ({item_type})" if item_type else item


def _reference(line: Line) -> str:
    return f"{line.reference} (sale {line.linked_sale})" if line.linked_sale else line.reference


def _table(rows: list[list[object]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    table.setStyle(TABLE_STYLE)
    return table
