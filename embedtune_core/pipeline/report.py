"""The run report: ``report.md`` and a self-contained ``report.html`` with plots.

Plots are drawn with matplotlib (Agg) and inlined as SVG, so the HTML opens offline.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from embedtune_core import io as eio
from embedtune_core.pipeline.results import Row, RunRecord


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _change(row: Row) -> tuple[str, str]:
    change = "–" if row.change is None else f"{row.change:+.4f}"
    relative = "–" if row.relative is None else f"{row.relative:+.1f}%"
    return change, relative


def _markdown_table(rows: list[Row]) -> str:
    out = ["| metric | before | after | change | relative |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        change, rel = _change(r)
        out.append(f"| {r.metric} | {_fmt(r.before)} | {_fmt(r.after)} | {change} | {rel} |")
    return "\n".join(out)


def _finished(fig: Any, ax: Any, title: str, **grid: Any) -> str:
    """The plot with its title, grid (``grid``: e.g. ``axis="y"``) and legend, as SVG text."""
    ax.set_title(title)
    ax.grid(alpha=0.3, **grid)
    ax.legend()
    return _svg(fig)


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _plots(record: RunRecord, log_history: list[dict[str, Any]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    losses = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    eval_losses = [(row["step"], row["eval_loss"]) for row in log_history if "eval_loss" in row and "step" in row]
    if losses:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot(*zip(*losses), marker="o", markersize=3, label="training loss", color="#1f77b4")
        if eval_losses:
            ax.plot(*zip(*eval_losses), marker="s", markersize=3, label="eval loss", color="#ff7f0e")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        plots["loss"] = _finished(fig, ax, "Loss")
    metrics = record.to_json()
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    names = [m for m in dict.fromkeys([*before, *after])]
    if names and (before or after):
        import numpy as np

        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 3.2))
        x = np.arange(len(names))
        width = 0.38
        if before:
            ax.bar(x - width / 2, [before.get(n, 0) for n in names], width, label="before", color="#9aa5b1")
        if after:
            ax.bar(x + width / 2, [after.get(n, 0) for n in names], width, label="after", color="#2ca02c")
        ax.set_xticks(x, names, rotation=20)
        ax.set_ylim(0, 1)
        plots["bars"] = _finished(fig, ax, "Before and after training", axis="y")
    dims = metrics.get("dims") or {}
    headline = metrics.get("headline_metric") or (names[0] if names else None)
    if dims and headline and len(dims) > 1:
        ordered = sorted(dims.items(), key=lambda kv: int(kv[0]))
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for stage, color in (("before", "#9aa5b1"), ("after", "#2ca02c")):
            points = [(int(d), v[stage][headline]) for d, v in ordered if v.get(stage) and headline in v[stage]]
            if points:
                ax.plot(*zip(*points), marker="o", label=stage, color=color)
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(d) for d, _ in ordered], [str(d) for d, _ in ordered])
        ax.set_xlabel("embedding dim")
        ax.set_ylabel(headline)
        plots["dims"] = _finished(fig, ax, f"{headline} against embedding dim")
    if metrics.get("deployment"):
        from embedtune_core.deploy.summary import plot

        figure = plot(metrics["deployment"])
        if figure is not None:
            plots["deployment"] = _svg(figure)
    interpolation = metrics.get("interpolation") or {}
    if len(interpolation.get("alphas") or []) > 1:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        alphas = interpolation["alphas"]
        for key, label, color in (("domain", "held-out", "#2ca02c"), ("retention", "retention", "#9467bd")):
            points = [(a, v) for a, v in zip(alphas, interpolation[key]) if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=label, color=color)
        ax.axvline(interpolation["chosen"], color="#888", linestyle="--", linewidth=1)
        ax.set_xlabel("a (0 = base model, 1 = tuned)")
        ax.set_ylabel("score")
        plots["interpolation"] = _finished(fig, ax, "Interpolation with the base model")
    return plots


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _sections(record: RunRecord) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """Extra report sections as ``(title, intro, header, rows)``: significance, retention,
    interpolation; each only when the run has it."""
    out = []
    for metric, stats in (record.significance or {}).items():
        ci = stats.get("ci95")
        rows = [[metric, _pct(stats.get("mean_change")), "–" if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]",
                 _fmt(stats.get("p_value")), f"{stats.get('wins', 0)} / {stats.get('losses', 0)} / "
                 f"{stats.get('ties', 0)}"]]
        out.append(("Is the change real?",
                    f"Paired over {stats.get('queries', 0)} queries: a bootstrap 95% interval of the mean change "
                    "and a randomisation test's p-value (small: unlikely to be chance).",
                    ["metric", "mean change", "95% interval", "p-value", "wins / losses / ties"], rows))
        for key, title in (("gained", "Queries that gained most"), ("lost", "Queries that lost most")):
            changed = stats.get(key) or []
            if changed:
                out.append((title, f"{metric} per query; rank = the first relevant document's rank (– : below "
                                   "the ranked depth).",
                            ["query", "relevant", "before", "after", "rank before", "rank after"],
                            [[_short(r["query"]), _short(r["relevant"]), _fmt(r["before"]), _fmt(r["after"]),
                              _fmt(r.get("rank_before")), _fmt(r.get("rank_after"))] for r in changed]))
    retention = record.retention or {}
    if retention.get("before") or retention.get("after"):
        before, after = retention.get("before") or {}, retention.get("after") or {}
        rows = [[m, _fmt(before.get(m)), _fmt(after.get(m)),
                 _pct(None if before.get(m) is None or after.get(m) is None else after[m] - before[m])]
                for m in dict.fromkeys([*before, *after])]
        out.append(("Retention", f"The general-domain set `{retention.get('data')}`: what training cost outside "
                                 "the domain.", ["metric", "before", "after", "change"], rows))
    interpolation = record.interpolation or {}
    if interpolation.get("alphas"):
        rows = [[f"{a:g}" + (" (kept)" if a == interpolation.get("chosen") else ""), _fmt(d), _fmt(r)]
                for a, d, r in zip(interpolation["alphas"], interpolation["domain"], interpolation["retention"])]
        out.append(("Interpolation", f"(1 - a) base + a tuned; a = 0 is the base model, a = 1 the tuned one. "
                                     f"{interpolation.get('metric')} on the held-out data, "
                                     f"{interpolation.get('retention_metric')} on the retention set.",
                    ["a", "held-out", "retention"], rows))
    deployment = record.to_json().get("deployment")
    if deployment:
        from embedtune_core.deploy.summary import section

        out.append(section(deployment))
    return out


def _short(text: Any, limit: int = 60) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_rows(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows])


def _html_rows(header: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
    return "".join(out) + "</table>"


def _dim_rows(record: RunRecord) -> list[tuple[str, list[Row]]]:
    dims = record.comparison.dims()
    if len(dims) == 1:
        return []
    full = record.comparison.full_dim()
    return [(str(full if d is None else d), record.comparison.rows(d)) for d in dims]


def _subject(record: RunRecord) -> str:
    if record.baseline:
        return f"`{record.model}` against `{record.baseline}` on `{record.data}`"
    return f"Model `{record.model}` on `{record.data}`"


def render_markdown(record: RunRecord, config_toml: str, stats: dict[str, Any]) -> str:
    lines = [f"# embedtune run: {record.name}", ""]
    lines.append(f"{_subject(record)}, {record.finished}.")
    lines += ["", "## Before and after", "", _markdown_table(record.comparison.rows())]
    for dim, rows in _dim_rows(record):
        lines += ["", f"### Embedding dim {dim}", "", _markdown_table(rows)]
    for title, intro, header, rows in _sections(record):
        lines += ["", f"## {title}", "", intro, "", _md_rows(header, rows)]
    if stats:
        lines += ["", "## Data and training", "", "| item | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in stats.items()]
    lines += ["", "## Config", "", "```toml", config_toml.rstrip(), "```", ""]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:60rem;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.3rem .8rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.up{color:#1a7f37}.down{color:#cf222e}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}svg{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:1rem;overflow:auto}.meta{color:#57606a}
"""


def _html_table(rows: list[Row]) -> str:
    out = ["<table><tr><th>metric</th><th>before</th><th>after</th><th>change</th><th>relative</th></tr>"]
    for r in rows:
        cls = "" if r.change is None else (" class=up" if r.change > 0 else " class=down" if r.change < 0 else "")
        change, rel = _change(r)
        out.append(
            f"<tr><td>{html.escape(r.metric)}</td><td>{_fmt(r.before)}</td><td>{_fmt(r.after)}</td>"
            f"<td{cls}>{change}</td><td{cls}>{rel}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_html(record: RunRecord, config_toml: str, stats: dict[str, Any], log_history: list[dict[str, Any]]) -> str:
    plots = _plots(record, log_history)
    title = html.escape(f"embedtune run: {record.name}")
    subject = html.escape(_subject(record)).replace("`", "")
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p class=meta>{subject}, {html.escape(record.finished)}</p>",
        "<h2>Before and after</h2>",
        _html_table(record.comparison.rows()),
        "<div class=plots>",
    ]
    for key, caption in (("bars", "Metrics before and after"), ("dims", "Quality against embedding dim"), ("loss", "Training loss"),
                         ("interpolation", "Held-out and retention scores against a"),
                         ("deployment", "Retention against bytes per vector of each exported variant")):
        if key in plots:
            parts.append(f"<figure>{plots[key]}<figcaption>{caption}</figcaption></figure>")
    parts.append("</div>")
    dim_rows = _dim_rows(record)
    if dim_rows:
        parts.append("<h2>Per embedding dim</h2>")
        for dim, rows in dim_rows:
            parts.append(f"<h3>dim {html.escape(str(dim))}</h3>" + _html_table(rows))
    for title, intro, header, rows in _sections(record):
        parts.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(intro).replace('`', '')}</p>"
                     + _html_rows(header, rows))
    if stats:
        parts.append("<h2>Data and training</h2><table>")
        parts += [f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in stats.items()]
        parts.append("</table>")
    parts.append(f"<h2>Config</h2><pre>{html.escape(config_toml)}</pre></body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path, record: RunRecord, config_toml: str, stats: dict[str, Any],
                 log_history: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir`` (each atomically)."""
    run_dir = Path(run_dir)
    md = eio.write_text(run_dir / "report.md", render_markdown(record, config_toml, stats))
    page = eio.write_text(run_dir / "report.html", render_html(record, config_toml, stats, log_history))
    return md, page
