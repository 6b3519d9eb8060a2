"""Where rows come from: a file, a folder of split files (``train.jsonl``, ``test.jsonl``...), a
folder written by ``datasets.save_to_disk``, or a hub dataset, as a train table and an optional
eval table."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from embedtune_core.errors import DataError
from embedtune_core.data.formats import FORMATS, Table, _arrow_table, read_table

SPLIT_NAMES = ("train", "validation", "dev", "test")
EVAL_SPLITS = ("validation", "dev", "test")
HUB_PREFIXES = ("hf:", "hub:")


def is_saved_dataset(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json"))


def split_files(folder: Path) -> dict[str, Path]:
    """``train.jsonl``, ``test.csv``... in a folder: split name -> file."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in FORMATS and path.stem.lower() in SPLIT_NAMES:
            name = path.stem.lower()
            if name in found:
                raise DataError(f"two files for split '{name}': {found[name].name} and {path.name}", file=folder)
            found[name] = path
    return found


def looks_like_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~"))
        or os.sep in source.rstrip(os.sep) and Path(source).suffix != ""
        or Path(source).suffix.lower() in FORMATS
        or bool(re.search(r"\.[A-Za-z0-9]{1,8}$", source))
    )


def load_tables(source: str, *, split: str | None = None, eval_split: str | None = None, subset: str | None = None,
                revision: str | None = None) -> tuple[Table, Table | None, str]:
    """The train table, the eval table (or None) and a description of the source. ``split`` /
    ``eval_split`` choose the splits of a folder, a saved dataset or a hub dataset; ``subset``
    and ``revision`` a hub dataset's configuration and revision."""
    options = {"split": split, "eval_split": eval_split, "subset": subset, "revision": revision}
    if source.startswith(HUB_PREFIXES):
        name = source.split(":", 1)[1]
        return _hub_tables(name, options), _hub_eval(name, options), f"hub dataset {name}"
    path = Path(os.path.expanduser(source))
    if path.is_dir():
        if is_saved_dataset(path):
            return _saved_tables(path, split, eval_split)
        files = split_files(path)
        if not files:
            raise DataError(
                "folder has no data",
                file=path,
                hint="expected a folder written by datasets.save_to_disk, or split files such as train.jsonl / test.jsonl",
            )
        train_name = split or ("train" if "train" in files else next(iter(files)))
        if train_name not in files:
            raise DataError(f"no split '{train_name}' in the folder", file=path, key="split", hint=f"splits: {', '.join(files)}")
        eval_name = eval_split or next((s for s in EVAL_SPLITS if s in files and s != train_name), None)
        if eval_name is not None and eval_name not in files:
            raise DataError(f"no split '{eval_name}' in the folder", file=path, key="eval_split", hint=f"splits: {', '.join(files)}")
        return read_table(files[train_name]), (read_table(files[eval_name]) if eval_name else None), f"folder {path}"
    if path.exists() or looks_like_path(source):
        return read_table(path), None, str(path)
    return _hub_tables(source, options), _hub_eval(source, options), f"hub dataset {source}"


def _saved_tables(path: Path, split: str | None, eval_split: str | None) -> tuple[Table, Table | None, str]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # damaged folders raise assorted errors
        raise DataError(f"cannot read the saved dataset: {str(exc).splitlines()[0]}", file=path) from None
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        train_name = split or ("train" if "train" in loaded else names[0])
        if train_name not in loaded:
            raise DataError(f"no split '{train_name}' in the saved dataset", file=path, key="split", hint=f"splits: {', '.join(names)}")
        eval_name = eval_split or next((s for s in EVAL_SPLITS if s in loaded and s != train_name), None)
        if eval_name is not None and eval_name not in loaded:
            raise DataError(f"no split '{eval_name}' in the saved dataset", file=path, key="eval_split", hint=f"splits: {', '.join(names)}")
        train = _arrow_table(f"{path}[{train_name}]", loaded[train_name].data.table)
        evaluation = _arrow_table(f"{path}[{eval_name}]", loaded[eval_name].data.table) if eval_name else None
        return train, evaluation, f"saved dataset {path}"
    return _arrow_table(str(path), loaded.data.table), None, f"saved dataset {path}"


def _hub_load(name: str, options: Mapping[str, Any], split: str) -> Any:
    import datasets

    kwargs = {"split": split}
    if options.get("subset"):
        kwargs["name"] = options["subset"]
    if options.get("revision"):
        kwargs["revision"] = options["revision"]
    try:
        return datasets.load_dataset(name, **kwargs)
    except Exception as exc:  # network, missing split, unknown name...
        raise DataError(
            f"could not load '{name}' from the hub: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="if you meant a local file, check the path; hub names need network access (and no HF_DATASETS_OFFLINE)",
        ) from None


def _hub_tables(name: str, options: Mapping[str, Any]) -> Table:
    dataset = _hub_load(name, options, options.get("split") or "train")
    return _arrow_table(f"hub:{name}", dataset.data.table if hasattr(dataset, "data") else dataset)


def _hub_eval(name: str, options: Mapping[str, Any]) -> Table | None:
    if not options.get("eval_split"):
        return None
    dataset = _hub_load(name, options, options["eval_split"])
    return _arrow_table(f"hub:{name}[{options['eval_split']}]", dataset.data.table)
