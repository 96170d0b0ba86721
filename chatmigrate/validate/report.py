"""Reports of a run (DESIGN §4): a terminal summary, the `--json` document and a self-contained HTML page.

All three are built from the same `RunResult`, which holds only aggregates: counts per kind, per
rule (with the first examples), per channel and per month. Nothing here sees a message, so a report
of a ten-million-message run costs what one of ten messages does.

The JSON shape is documented by schemas/report.schema.json (a test validates real output against it).
The HTML page needs no network: CSS and the chart (SVG) are inline, there is no script.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatmigrate.redact import printable
from chatmigrate.validate.findings import EXAMPLES_PER_CODE
from chatmigrate.validate.rules import SEVERITIES, rule

if TYPE_CHECKING:  # pipeline imports validate; the report only reads its result
    from chatmigrate.pipeline import RunResult

SCHEMA_ID = "https://chatmigrate.invalid/schemas/report.schema.json"
TERMINAL_EXAMPLES = 3
HTML_CHANNELS = 500  # channels listed in the HTML page; the rest are summed in one line


# -- aggregates shared by every form ----------------------------------------------------------------
def rule_rows(result: RunResult) -> list[dict[str, Any]]:
    """One row per rule that fired: errors first, then by code."""
    rows = []
    for code, count in result.sink.counts.items():
        entry = rule(code)
        rows.append({"code": code, "name": entry.name, "severity": entry.severity, "count": count,
                     "summary": entry.summary, "repair": entry.repair,
                     "examples": [f.as_json() for f in result.sink.examples.get(code, [])]})
    rows.sort(key=lambda r: (SEVERITIES.index(r["severity"]), r["code"]))
    return rows


def severity_totals(result: RunResult) -> dict[str, int]:
    totals = dict.fromkeys(SEVERITIES, 0)
    for code, count in result.sink.counts.items():
        totals[rule(code).severity] += count
    return totals


def channel_rows(result: RunResult) -> list[dict[str, Any]]:
    """Messages per channel, largest first, with the channel's name when the run saw it."""
    rows = [{"id": cid, "name": result.channel_names.get(cid), "messages": n}
            for cid, n in result.per_channel.items()]
    rows.sort(key=lambda r: (-r["messages"], r["name"] or "", r["id"]))
    return rows


def month_series(per_month: dict[str, int]) -> list[tuple[str, int]]:
    """Every month from the first to the last, gaps filled with 0 (pandas does the calendar)."""
    if not per_month:
        return []
    import pandas as pd  # imported here: only reports need it, and it costs a third of a second

    counts = pd.Series(per_month, dtype="int64")
    counts.index = pd.PeriodIndex(counts.index, freq="M")
    full = counts.reindex(pd.period_range(counts.index.min(), counts.index.max(), freq="M"), fill_value=0)
    return [(str(period), int(n)) for period, n in full.items()]


def plural(n: int, word: str) -> str:
    """`1 error`, `2 errors`, `0 errors` (`info` is a mass noun: `3 info`)."""
    return f"{n:,} {word}" if n == 1 or word == "info" else f"{n:,} {word}s"


def totals_text(totals: dict[str, int]) -> str:
    return ", ".join(plural(totals[severity], severity) for severity in SEVERITIES)


def exit_code_of(result: RunResult) -> int:
    return 1 if result.errors else 0


# -- JSON -------------------------------------------------------------------------------------------
def as_json(result: RunResult, exit_code: int, report_file: Path | None = None) -> dict[str, Any]:
    """The `--json` document: see schemas/report.schema.json."""
    data = result.as_json()
    data.update({
        "exit_code": exit_code,
        "severity_totals": severity_totals(result),
        "rejected_records": result.sink.rejected_records,
        "rules": rule_rows(result),
        "per_channel": channel_rows(result),
        "per_month": dict(result.per_month),
        "report_file": str(report_file) if report_file else None,
    })
    return data


# -- terminal ---------------------------------------------------------------------------------------
def _example_line(example: dict[str, Any]) -> str:
    where = example["location"] or "unknown location"
    record = f" [{example['record_id']}]" if example["record_id"] else ""
    return f"      {where}{record}: {example['message']}"


def summary_lines(result: RunResult) -> list[str]:
    """The terminal summary: counts per kind, then per rule the count, what was done and first examples.

    Every line is `printable`: an example quotes the input (a name, a text), which may hold NUL, escape
    sequences or bidi overrides that must not reach the terminal raw."""
    verb = "would load" if result.dry_run else "loaded"
    lines = [f"{result.command}: {result.location} ({result.source})"
             + (f" → {result.target}" if result.target else " (dry run: nothing written)"),
             f"  {'kind':<12} {'read':>9} {'added':>7} {verb:>10} {'rejected':>9} {'skipped':>8}"]
    for kind, c in result.counts.items():
        if any(c.values()):
            lines.append(f"  {kind:<12} {c['read']:>9,} {c['added']:>7,} {c['loaded']:>10,} {c['rejected']:>9,} "
                         f"{c['skipped']:>8,}")
    rows = rule_rows(result)
    if rows:
        totals = severity_totals(result)
        lines.append(f"  findings: {totals_text(totals)}")
    for row in rows:
        lines.append(f"  {row['code']} {row['name']} ({row['severity']}): {row['count']:,} — {row['repair']}")
        lines += [_example_line(example) for example in row["examples"][:TERMINAL_EXAMPLES]]
        if row["count"] > TERMINAL_EXAMPLES:
            lines.append(f"      … and {row['count'] - TERMINAL_EXAMPLES:,} more")
    if result.sink.wrote_rejects:
        lines.append(f"  rejected records written to {result.sink.rejects_path}")
    elif result.sink.rejected_records:
        lines.append("  rejected records were not written (use --rejects FILE to keep them)")
    if not result.dry_run:
        lines.append(f"  rows inserted or changed: {result.rows_written:,}")
        for repair, n in sorted(result.repairs.items()):
            lines.append(f"  repaired for the target: {repair}: {n:,} (the original, or its size and SHA-256 "
                         "when too large, in props.cm_repairs)")
        if result.retries:
            lines.append(f"  transactions retried after a lost connection: {result.retries:,}")
    lines += [f"  {line}" for line in result.target_summary.get("lines", ())]
    lines += [f"  {line}" for line in mapping_lines(result.mapping_plan)]
    return [printable(line) for line in lines]


_ACTIONS = {"kept": "kept as they are", "merged": "merged onto existing users", "merged-again":
            "merged onto a user another source user already took", "renamed": "renamed", "rejected": "rejected",
            "merged-away": "merged into another", "excluded": "left out"}


def _actions(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {_ACTIONS.get(action, action)}" for action, n in sorted(counts.items()))


def mapping_lines(plan: dict[str, Any] | None) -> list[str]:
    """What `--map` did or would do: users merged onto the target's users or created, channels, skips."""
    if plan is None:
        return []
    lines = [f"mapping {plan['mapping']}: the target holds {plan['existing_users']:,} users"]
    for what in ("users", "teams", "channels"):
        if plan[what]:
            lines.append(f"  {what}: {_actions(plan[what])}")
    for example in plan["merges"][:TERMINAL_EXAMPLES]:
        lines.append(f"    @{example['source']} → @{example['target']} (by {example['how']})")
    if len(plan["merges"]) > TERMINAL_EXAMPLES:
        lines.append(f"    … and {len(plan['merges']) - TERMINAL_EXAMPLES:,} more (every merge: --json or --report)")
    for reason, n in sorted(plan["skipped"].items()):
        lines.append(f"  left out, {reason}: {n:,}")
    return lines


def print_summary(result: RunResult, echo: Callable[[str], None]) -> None:
    for line in summary_lines(result):
        echo(line)


# -- HTML -------------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;
 color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dce4;
 padding-bottom:4px}
.meta{color:#5b6475;margin:0 0 12px}
.status{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:600;margin:8px 0}
.status.clean{background:#e3f6e8;color:#17612f}.status.errors{background:#fde7e7;color:#9b1c1c}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#f5f6f8;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600}
.sev.error{background:#fde7e7;color:#9b1c1c}.sev.warning{background:#fff3d6;color:#8a5a00}
.sev.info{background:#e6eefc;color:#234b96}
tr.examples td{background:#fafbfc;font-size:12.5px;color:#394150}
tr.examples ul{margin:0;padding-left:18px}code{font-size:12.5px}
.bar{background:#4a78c2;height:10px;display:inline-block;border-radius:2px}
svg text{font:11px system-ui,sans-serif;fill:#394150}
.muted{color:#7a8294}
"""


def _e(value: Any) -> str:
    # printable: NUL and other control characters are not allowed in HTML, and a lone surrogate
    # cannot even be written to the UTF-8 file.
    return html.escape(printable("" if value is None else str(value)), quote=True)


def _counts_table(result: RunResult) -> str:
    verb = "would load" if result.dry_run else "loaded"
    head = "".join(f'<th class="n">{h}</th>' for h in ("read", "added", verb, "rejected", "skipped"))
    rows = []
    for kind, c in result.counts.items():
        cells = "".join(f'<td class="n">{c[k]:,}</td>' for k in ("read", "added", "loaded", "rejected", "skipped"))
        rows.append(f'<tr data-kind="{_e(kind)}"><td>{_e(kind)}</td>{cells}</tr>')
    return f'<table id="counts"><tr><th>kind</th>{head}</tr>{"".join(rows)}</table>'


def _example_item(example: dict[str, Any]) -> str:
    record = f' <span class="muted">record {_e(example["record_id"])}</span>' if example["record_id"] else ""
    return (f'<li><code>{_e(example["location"] or "unknown location")}</code>{record}: {_e(example["message"])}'
            f' <span class="muted">→ {_e(example["repair"])}</span></li>')


def _rules_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p id="rules-none">No findings: every record passes every rule.</p>'
    out = ['<table id="rules"><tr><th>code</th><th>rule</th><th>severity</th><th class="n">count</th>'
           "<th>what it finds</th><th>what chatmigrate does</th></tr>"]
    for row in rows:
        out.append(f'<tr class="rule" data-code="{_e(row["code"])}"><td><b>{_e(row["code"])}</b></td>'
                   f'<td>{_e(row["name"])}</td><td><span class="sev {_e(row["severity"])}">{_e(row["severity"])}'
                   f'</span></td><td class="n">{row["count"]:,}</td><td>{_e(row["summary"])}</td>'
                   f'<td>{_e(row["repair"])}</td></tr>')
        shown = "".join(_example_item(example) for example in row["examples"])
        more = row["count"] - len(row["examples"])
        tail = f'<li class="muted">… and {more:,} more</li>' if more > 0 else ""
        out.append(f'<tr class="examples" data-code="{_e(row["code"])}"><td></td><td colspan="5">'
                   f'First examples:<ul>{shown}{tail}</ul></td></tr>')
    out.append("</table>")
    return "".join(out)


def _channels_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No messages.</p>'
    top = max(r["messages"] for r in rows)
    out = ['<table id="channels"><tr><th>channel</th><th>id</th><th class="n">messages</th><th></th></tr>']
    for row in rows[:HTML_CHANNELS]:
        width = max(1, round(200 * row["messages"] / top))
        out.append(f'<tr class="channel"><td>{_e(row["name"] or "(unnamed)")}</td><td class="muted">'
                   f'<code>{_e(row["id"])}</code></td><td class="n">{row["messages"]:,}</td>'
                   f'<td><span class="bar" style="width:{width}px"></span></td></tr>')
    if len(rows) > HTML_CHANNELS:
        rest = rows[HTML_CHANNELS:]
        out.append(f'<tr><td colspan="2" class="muted">{len(rest):,} more channels</td>'
                   f'<td class="n">{sum(r["messages"] for r in rest):,}</td><td></td></tr>')
    out.append("</table>")
    return "".join(out)


def month_chart_svg(series: list[tuple[str, int]]) -> str:
    """A bar chart of messages per month as inline SVG (no script, no fonts to fetch)."""
    if not series:
        return '<p class="muted" id="months-none">No messages, no chart.</p>'
    width, height, left, bottom, top_pad = 1000, 260, 56, 34, 16
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    peak = max(n for _, n in series) or 1
    step = plot_w / len(series)
    bar_w = min(60.0, max(1.0, step * 0.8))
    parts = [f'<svg id="months" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="messages per month">',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" y2="{top_pad + plot_h}" stroke="#9aa3b2"/>']
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h - frac * plot_h
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac):,}</text>'
                     f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#eceef2"/>')
    # Label months when there are few, else years (at their January); skip a label that would touch
    # the one before it, so long histories stay readable.
    by_month = len(series) <= 24
    gap = 62 if by_month else 40  # pixels a label needs (11px font: "2024-03" ≈ 48, "2024" ≈ 28)
    last_label = float("-inf")
    for i, (month, n) in enumerate(series):
        x = left + i * step + (step - bar_w) / 2
        h = plot_h * n / peak
        parts.append(f'<rect class="month" data-month="{month}" data-count="{n}" x="{x:.1f}" '
                     f'y="{top_pad + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="#4a78c2">'
                     f"<title>{month}: {n:,} messages</title></rect>")
        centre = x + bar_w / 2
        if (by_month or i == 0 or month.endswith("-01")) and centre - last_label >= gap:
            last_label = centre
            parts.append(f'<text class="axis" x="{centre:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                         f"{month if by_month else month[:4]}</text>")
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: RunResult, exit_code: int) -> str:
    """The whole report as one HTML document: open it from disk, send it by mail, no network needed."""
    totals = severity_totals(result)
    rows = rule_rows(result)
    series = month_series(result.per_month)
    target = _e(result.target) if result.target else "dry run: nothing written"
    status = ("clean", "No errors: every record can be loaded.") if not totals["error"] else (
        "errors", f"{plural(totals['error'], 'error')}: {plural(result.sink.rejected_records, 'record')} would not "
        "load as they are.")
    when = ""
    if result.first_at and result.last_at:
        when = f" · messages from {result.first_at:%Y-%m-%d} to {result.last_at:%Y-%m-%d}"
    rejects = (f'<p>Rejected records: <code>{_e(result.sink.rejects_path)}</code></p>'
               if result.sink.wrote_rejects else "")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatmigrate {_e(result.command)} report: {_e(result.location)}</title>
<style>{_CSS}</style></head>
<body>
<h1>chatmigrate {_e(result.command)}: {_e(result.location)}</h1>
<p class="meta">source {_e(result.source)} · target {target}{when} · generated {generated} · exit code {exit_code}</p>
<div id="status" class="status {status[0]}">{_e(status[1])}</div>
<p id="totals">{_e(totals_text(totals).replace(", ", " · "))}</p>
{rejects}
<h2>Records</h2>
{_counts_table(result)}
<h2>Findings by rule</h2>
<p class="muted">Errors reject the record; warnings load it with the repair shown; info is counted. The first
{EXAMPLES_PER_CODE} examples of each rule are listed with their place in the export.</p>
{_rules_table(rows)}
{_mapping_section(result.mapping_plan)}
<h2>Messages per month</h2>
{month_chart_svg(series)}
<h2>Messages per channel</h2>
{_channels_table(channel_rows(result))}
</body></html>
"""


def _mapping_section(plan: dict[str, Any] | None) -> str:
    if plan is None:
        return ""
    items = "".join(f"<li>{_e(line.strip())}</li>" for line in mapping_lines(plan)[1:]
                    if not line.startswith("    "))  # the merges get a table of their own
    merges = "".join(f"<tr><td>@{_e(m['source'])}</td><td>{_e(m['source_email'])}</td><td>@{_e(m['target'])}</td>"
                     f"<td>{_e(m['how'])}</td></tr>" for m in plan["merges"])
    table = (f'<table id="merges"><tr><th>source user</th><th>email</th><th>merged onto</th><th>by</th></tr>'
             f"{merges}</table>") if merges else ""
    return f'<h2>Mapping</h2>\n<p>{_e(mapping_lines(plan)[0])}</p>\n<ul id="mapping">{items}</ul>\n{table}'


def write_html(result: RunResult, exit_code: int, path: Path) -> None:
    path.write_text(render_html(result, exit_code), encoding="utf-8")


__all__ = ["as_json", "print_summary", "render_html", "summary_lines", "write_html"]
