"""Reading and writing TREC qrels and run files.

qrels: one judgement per line, ``query_id iteration doc_id relevance`` (relevance an integer).
run: one retrieved document per line, ``query_id Q0 doc_id rank score tag``; like trec_eval,
the rank column is not used: documents are ranked by score (ties by document id, descending).
Fields are separated by whitespace; blank lines and a UTF-8 byte-order mark are skipped. A
malformed line, a document listed twice for one query, or a file with no lines at all is a
:class:`~embedtune_core.errors.DataError` naming file and line.
"""

from __future__ import annotations

import math
import os
from typing import Iterator, Mapping

from embedtune_core.errors import DataError


def _lines(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a file", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=path) from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not part of the id
                raw = raw[3:]
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError:
                raise DataError("not UTF-8 text", file=path, line=number) from None
            if fields:
                yield number, fields


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a TREC qrels file."""
    qrels: dict[str, dict[str, int]] = {}
    for number, fields in _lines(path):
        if len(fields) != 4:
            raise DataError(
                f"expected 4 fields 'query_id iteration doc_id relevance', found {len(fields)}",
                file=path, line=number, hint="a qrels line looks like: 101 0 doc42 1",
            )
        query, _, doc, relevance = fields
        try:
            grade = int(relevance)
        except ValueError:
            raise DataError(f"relevance '{relevance}' is not an integer", file=path, line=number) from None
        judged = qrels.setdefault(query, {})
        if doc in judged:
            raise DataError(f"document '{doc}' is judged twice for query '{query}'", file=path, line=number)
        judged[doc] = grade
    if not qrels:
        raise DataError("no judgements in the qrels file", file=path)
    return qrels


def read_run(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{query_id: {doc_id: score}}`` from a TREC run file."""
    run: dict[str, dict[str, float]] = {}
    for number, fields in _lines(path):
        if len(fields) != 6:
            raise DataError(
                f"expected 6 fields 'query_id Q0 doc_id rank score tag', found {len(fields)}",
                file=path, line=number, hint="a run line looks like: 101 Q0 doc42 1 12.7 myrun",
            )
        query, _, doc, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError:
            raise DataError(f"score '{score_text}' is not a number", file=path, line=number) from None
        if math.isnan(score):
            raise DataError("score is NaN", file=path, line=number)
        ranking = run.setdefault(query, {})
        if doc in ranking:
            raise DataError(f"document '{doc}' is listed twice for query '{query}'", file=path, line=number)
        ranking[doc] = score
    if not run:
        raise DataError("no ranked documents in the run file", file=path,
                        hint="a run line looks like: 101 Q0 doc42 1 12.7 myrun")
    return run


def format_run(run: Mapping[str, Mapping[str, float]], tag: str = "embedtune") -> str:
    """A run as TREC run text, each query's documents in trec_eval's order, ranks from 1."""
    lines = []
    for query in sorted(run):
        ranked = sorted(run[query].items(), key=lambda item: (item[1], item[0]), reverse=True)
        for rank, (doc, score) in enumerate(ranked, 1):
            lines.append(f"{query} Q0 {doc} {rank} {score!r} {tag}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_qrels(qrels: Mapping[str, Mapping[str, int]]) -> str:
    """Qrels as TREC qrels text."""
    lines = [f"{query} 0 {doc} {int(grade)}" for query in sorted(qrels) for doc, grade in qrels[query].items()]
    return "\n".join(lines) + ("\n" if lines else "")
