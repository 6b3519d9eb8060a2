"""The deployment table for the terminal and the report, and the plot of retention against the
bytes each stored vector takes (the report draws it: :mod:`embedtune_core.pipeline.report`)."""

from __future__ import annotations

from typing import Any

HEADER = ["variant", "{metric}", "retention", "texts/s", "speed-up", "model MB", "bytes/vector"]
#: marks in the first column
REFERENCE_MARK, RECOMMENDED_MARK = "(reference)", "(recommended)"


def _number(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def rows(deployment: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows (text cells), every variant in order."""
    metric = deployment.get("headline_metric") or "metric"
    out = []
    for variant in deployment.get("variants", []):
        name = variant["name"]
        if name == deployment.get("reference"):
            name += " " + REFERENCE_MARK
        if name.split(" ")[0] == deployment.get("recommended"):
            name += " " + RECOMMENDED_MARK
        retention = variant.get("retention")
        out.append([name, _number(variant.get(metric), ".4f"),
                    "–" if retention is None else f"{100 * retention:.1f}%",
                    _number(variant.get("texts_per_second"), ".1f"),
                    "–" if variant.get("speedup") is None else f"{variant['speedup']:.2f}x",
                    _number(variant.get("model_mb"), ".1f"), str(variant.get("bytes_per_vector"))])
    return [h.format(metric=metric) for h in HEADER], out


def verdict(deployment: dict[str, Any]) -> str:
    """One line: the recommended variant, or that none keeps enough."""
    share = f"{100 * deployment.get('min_retention', 0.99):g}%"
    chosen = deployment.get("recommended")
    if chosen is None:
        return f"no variant keeps {share} of the reference's {deployment.get('headline_metric')}: deploy the reference"
    variant = next(v for v in deployment["variants"] if v["name"] == chosen)
    return (f"recommended: {chosen} ({100 * variant['retention']:.1f}% of the reference's "
            f"{deployment.get('headline_metric')}, {variant['speedup']:.2f}x its speed, {variant['bytes_per_vector']} "
            f"bytes a vector): {variant['path']}")


def deployment_table(deployment: dict[str, Any]) -> str:
    """The table as terminal text, with the verdict and how speed was measured."""
    from embedtune_core.io import text_table

    header, body = rows(deployment)
    threads = deployment.get("threads")
    note = (f"speed: {deployment.get('speed_texts')} held-out texts, {threads} thread{'s' if threads != 1 else ''}, "
            f"batch {deployment.get('speed_batch_size', deployment.get('batch_size'))}, the same run for every variant")
    return "\n".join([text_table(body, header), "", note, verdict(deployment)])


def section(deployment: dict[str, Any]) -> tuple[str, str, list[str], list[list[str]]]:
    """The report section ``(title, intro, header, rows)``."""
    header, body = rows(deployment)
    intro = ("Every exported variant measured on the held-out data in one run: retention is its headline metric "
             f"divided by the reference's; speed is encoding on the same {deployment.get('speed_texts')} texts with "
             f"{deployment.get('threads')} thread(s) in batches of "
             f"{deployment.get('speed_batch_size', deployment.get('batch_size'))}. {verdict(deployment)}.")
    return "Deployment", intro, header, body


def plot(deployment: dict[str, Any]) -> Any:
    """A matplotlib figure (None without variants): each variant's retention against its bytes per
    vector (log scale), one colour per exported model, one marker per embedding precision; the
    recommended variant circled."""
    variants = deployment.get("variants") or []
    if not variants or all(v.get("retention") is None for v in variants):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    markers = {"float32": "o", "int8": "s", "binary": "^"}
    models = list(dict.fromkeys(f"{v['backend']}-{v['weights']}" for v in variants))
    for index, model in enumerate(models):
        for embedding, marker in markers.items():
            points = [(v["bytes_per_vector"], v["retention"]) for v in variants
                      if f"{v['backend']}-{v['weights']}" == model and v["embedding"] == embedding
                      and v.get("retention") is not None]
            if points:
                ax.scatter(*zip(*points), marker=marker, color=f"C{index}", alpha=0.8,
                           label=f"{model}, {embedding}")
    chosen = next((v for v in variants if v["name"] == deployment.get("recommended")), None)
    if chosen is not None:
        ax.scatter([chosen["bytes_per_vector"]], [chosen["retention"]], s=180, facecolors="none", edgecolors="black",
                   label="recommended")
    ax.axhline(deployment.get("min_retention", 0.99), color="#888", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per stored vector")
    ax.set_ylabel(f"retention of {deployment.get('headline_metric')}")
    ax.set_title("Retention against vector size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return fig
