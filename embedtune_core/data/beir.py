"""BEIR-style IR folders: ``corpus.jsonl``, ``queries.jsonl`` and graded qrels
(``qrels/SPLIT.tsv`` or a TREC ``qrels.txt``/``qrels.tsv``), every judgement checked against the
corpus and the queries."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from embedtune_core.errors import DataError
from embedtune_core.types import IRData
from embedtune_core.data.formats import Table, _kind, read_jsonl, read_text
from embedtune_core.data.records import _missing, text_value
from embedtune_core.data.sources import EVAL_SPLITS

def _id_value(table: Table, index: int, row: Mapping[str, Any], column: str = "_id") -> str:
    if column not in row:
        raise _missing(table, index, column, column)
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"field '{column}' must be a text or integer id, got {_kind(value)}", **table.where(index), key=column)
    value = str(value).strip()
    if not value:
        raise DataError(f"field '{column}' is empty, expected an id", **table.where(index), key=column)
    return value


def read_corpus(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """BEIR ``corpus.jsonl``: ``_id``, optional ``title``, ``text`` -> {id: "title text"}."""
    table = read_jsonl(path)
    corpus: dict[str, str] = {}
    where: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        doc_id = _id_value(table, index, row)
        if doc_id in corpus:
            raise DataError(
                f"duplicate document id '{doc_id}' (first on line {where[doc_id]})",
                **table.where(index),
                key="_id",
                hint="document ids must be unique",
            )
        title = row.get("title") or ""
        if not isinstance(title, str):
            raise DataError(f"field 'title' must be text, got {_kind(title)}", **table.where(index), key="title")
        if "text" not in row:
            raise _missing(table, index, "text", "text")
        body = row["text"]
        if body is None or not isinstance(body, str):
            raise DataError(f"field 'text' must be text, got {_kind(body)}", **table.where(index), key="text")
        text = f"{title.strip()} {body.strip()}".strip()
        if not text:
            raise DataError("document has neither title nor text", **table.where(index), key="text", hint="fill it or drop the document")
        corpus[doc_id] = text
        where[doc_id] = table.lines[index]
    return corpus, where


def read_queries(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    table = read_jsonl(path)
    queries: dict[str, str] = {}
    where: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        query_id = _id_value(table, index, row)
        if query_id in queries:
            raise DataError(
                f"duplicate query id '{query_id}' (first on line {where[query_id]})",
                **table.where(index),
                key="_id",
                hint="query ids must be unique",
            )
        queries[query_id] = text_value(table, index, row, "text", "text")
        where[query_id] = table.lines[index]
    return queries, where


def read_qrels(path: Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    """Graded judgements: TREC ``qid 0 docid grade`` or BEIR ``query-id corpus-id score`` (a
    header line is allowed). Returns qrels and the line of each judgement."""
    text = read_text(path)
    qrels: dict[str, dict[str, int]] = {}
    lines: dict[tuple[str, str], int] = {}
    first = True
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        parts = raw.split("\t") if "\t" in raw else raw.split()
        parts = [p.strip() for p in parts]
        if first:
            first = False
            if len(parts) in (3, 4) and not _is_int(parts[-1]):
                continue  # header such as query-id	corpus-id	score
        if len(parts) == 4:
            query_id, _, doc_id, grade_text = parts
        elif len(parts) == 3:
            query_id, doc_id, grade_text = parts
        else:
            raise DataError(
                f"expected 3 or 4 fields, got {len(parts)}",
                file=path,
                line=number,
                hint="TREC qrels: 'QUERY_ID 0 DOC_ID GRADE'; BEIR: 'query-id<TAB>corpus-id<TAB>score'",
            )
        if not _is_int(grade_text):
            raise DataError(
                f"relevance grade must be an integer, got {grade_text!r}",
                file=path,
                line=number,
                key="score",
                hint="grades are integers: 0 not relevant, 1 relevant, 2+ more relevant",
            )
        if not query_id or not doc_id:
            raise DataError("empty query or document id", file=path, line=number)
        if doc_id in qrels.get(query_id, {}):
            raise DataError(
                f"duplicate judgement for query '{query_id}' and document '{doc_id}' (first on line {lines[(query_id, doc_id)]})",
                file=path,
                line=number,
                hint="judge each (query, document) pair once",
            )
        qrels.setdefault(query_id, {})[doc_id] = int(float(grade_text))
        lines[(query_id, doc_id)] = number
    if not qrels:
        raise DataError("qrels file has no judgements", file=path)
    return qrels, lines


def _is_int(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value == int(value)


def qrels_files(folder: Path) -> dict[str, Path]:
    """Split name -> qrels file: ``qrels/SPLIT.tsv`` (BEIR) or a top-level ``qrels.txt``/``.tsv``
    (split ``test``)."""
    found: dict[str, Path] = {}
    sub = folder / "qrels"
    if sub.is_dir():
        for path in sorted(sub.iterdir()):
            if path.is_file() and path.suffix.lower() in (".tsv", ".txt", ".trec", ".qrels"):
                found[path.stem] = path
    for name in ("qrels.txt", "qrels.tsv", "qrels.trec"):
        if (folder / name).is_file():
            found.setdefault("test", folder / name)
    return found


def read_ir_folder(folder: str | os.PathLike, *, split: str | None = None,
                   eval_split: str | None = None) -> tuple[IRData, IRData | None, dict[str, Any]]:
    """A BEIR-style folder -> (train split, eval split or None, notes); ``split`` names the qrels
    to train on (default: train, else test, dev or validation), ``eval_split`` the held-out ones."""
    folder = Path(os.path.expanduser(str(folder)))
    if not folder.exists():
        raise DataError("folder not found", file=folder, hint="an IR source is a folder with corpus.jsonl, queries.jsonl and qrels")
    if not folder.is_dir():
        raise DataError(
            "an IR source is a folder, got a file",
            file=folder,
            hint="the folder holds corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv or qrels.txt; for (query, document) pairs use type 'pairs'",
        )
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DataError(f"{name} not found", file=folder / name, hint="an IR folder holds corpus.jsonl, queries.jsonl and qrels")
    files = qrels_files(folder)
    if not files:
        raise DataError("no qrels found", file=folder, hint="add qrels/SPLIT.tsv (BEIR) or qrels.txt (TREC: 'QUERY_ID 0 DOC_ID GRADE')")
    train_name = split or ("train" if "train" in files else next((s for s in ("test", "dev", "validation") if s in files), next(iter(files))))
    if train_name not in files:
        raise DataError(f"no qrels for split '{train_name}'", file=folder, key="split", hint=f"splits: {', '.join(files)}")
    eval_name = eval_split or next((s for s in EVAL_SPLITS if s in files and s != train_name), None)
    if eval_name is not None and eval_name not in files:
        raise DataError(f"no qrels for split '{eval_name}'", file=folder, key="eval_split", hint=f"splits: {', '.join(files)}")
    corpus, _ = read_corpus(folder / "corpus.jsonl")
    queries, _ = read_queries(folder / "queries.jsonl")
    train = _ir_split(files[train_name], corpus, queries)
    evaluation = _ir_split(files[eval_name], corpus, queries) if eval_name else None
    return train, evaluation, {"train_split": train_name, "eval_split": eval_name}


def _ir_split(path: Path, corpus: dict[str, str], queries: dict[str, str]) -> IRData:
    qrels, lines = read_qrels(path)
    for (query_id, doc_id), number in lines.items():
        if query_id not in queries:
            raise DataError(
                f"qrels name query '{query_id}', which is not in queries.jsonl",
                file=path,
                line=number,
                hint="every judged query must be in queries.jsonl",
            )
        if doc_id not in corpus:
            raise DataError(
                f"qrels name document '{doc_id}', which is not in corpus.jsonl",
                file=path,
                line=number,
                hint="every judged document must be in corpus.jsonl",
            )
    for query_id, judged in qrels.items():
        if not any(grade > 0 for grade in judged.values()):
            number = min(lines[(query_id, d)] for d in judged)
            raise DataError(
                f"query '{query_id}' has no relevant document (every grade is 0 or less)",
                file=path,
                line=number,
                hint="give the query a judgement with grade 1 or more, or remove its judgements",
            )
    return IRData(corpus=corpus, queries={q: queries[q] for q in qrels}, qrels=qrels)
