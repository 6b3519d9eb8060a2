"""The commented starter pipeline written by ``embedtune init``."""

from __future__ import annotations

from typing import Any

from embedtune_core.config.schema import SECTIONS, describe_fields

HEADER = """\
# embedtune pipeline: read data -> mine hard negatives -> evaluate the base model -> train ->
# evaluate the tuned model, and write runs/<name>/ (model, metrics.json, report.html).
#
#   embedtune run {file}                       run it
#   embedtune run {file} -s training.epochs=2  override any key
#   embedtune config show {file}               see every key with its value
#
# Keys left commented out keep the default shown.
"""

SECTION_NOTES = {
    "model": "The model to tune: a hub name, a local folder, or the bundled default (works offline).",
    "data": "Training data. `embedtune data list` shows the bundled sets; `embedtune data validate FILE --type T` checks yours.",
    "mining": "Hard negatives: documents that look relevant but are not. Remove `miner` to skip mining.",
    "loss": "Leave `name` unset for the loss declared the default for the data type (`embedtune components loss`).",
    "training": "The guide: 1 epoch for small sets, warmup 10%, batch as large as memory allows (in-batch negatives = batch - 1).",
    "evaluation": "Metrics as NAME@K: ndcg, mrr, map, recall, precision, f1.",
}


def _toml_value(value: Any) -> str:
    import tomli_w

    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(str(key))


def starter_toml(values: dict[str, dict[str, Any]] | None = None, file_name: str = "pipeline.toml") -> str:
    """A commented pipeline. ``values`` sets keys per section (``{"data": {"source": ...}}``,
    top-level keys under ``""``); every other key is shown commented out with its default."""
    values = values or {}
    lines = [HEADER.format(file=file_name)]

    rows = describe_fields()

    def emit(section: str) -> None:
        chosen = values.get(section, {})
        for row in rows:
            if (row["key"].rpartition(".")[0]) != section:
                continue
            name, default = row["name"], row["default"]
            help_text = row["help"] + (" (" + ", ".join(map(str, row["choices"])) + ")" if row["choices"] else "")
            lines.append(f"# {help_text}")
            if name in chosen:
                lines.append(f"{name} = {_toml_value(chosen[name])}")
            elif default is None:
                lines.append(f"# {name} =")
            else:
                lines.append(f"# {name} = {_toml_value(default)}")

    emit("")
    for section in SECTIONS:
        lines += ["", f"[{section}]", f"# {SECTION_NOTES[section]}"]
        emit(section)
    return "\n".join(lines) + "\n"
