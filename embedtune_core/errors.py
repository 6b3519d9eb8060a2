"""One error type for everything a user can fix, rendered as one clear message."""

from __future__ import annotations

from typing import Any


class EmbedtuneError(Exception):
    """An error in the user's input, config, data or environment.

    The CLI prints it as a single message (no traceback) and exits with ``exit_code`` (2).
    ``file``, ``line``, ``key`` and ``record`` say where; ``hint`` says how to fix it.
    """

    exit_code = 2
    #: the run folder is kept as the error leaves it (so --resume can continue it), rather than
    #: put back as it was before the command
    keeps_run = False

    def __init__(
        self,
        message: str,
        *,
        file: Any = None,
        line: int | None = None,
        key: str | None = None,
        record: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = None if file is None else shown_path(file)
        self.line = line
        self.key = key
        self.record = record
        self.hint = hint
        #: the plugin whose component or hook raised it (set where a component is called)
        self.plugin: str | None = None
        #: what happened to the run folder, shown on its own line (set by the pipeline)
        self.note: str | None = None

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.key:  # a key, or the -s override that set it
            parts.append(self.key if self.key.startswith("-s ") else f"key '{self.key}'")
        return ", ".join(parts)

    def format(self) -> str:
        """``WHERE: MESSAGE`` and, with a hint, a second line ``  hint: HINT``. Characters that
        would break the line or the terminal (control characters, line separators, lone
        surrogates), which a message can quote from the user's data, are shown escaped."""
        where = printable(self.location())
        message = printable(self.message)
        text = f"{where}: {message}" if where else message
        if self.hint:
            text += f"\n  hint: {printable(self.hint)}"
        if self.note:
            text += f"\n  note: {printable(self.note)}"
        return text

    def __str__(self) -> str:
        return self.format()


def shown_path(path: Any) -> str:
    """A path as text for a message, whatever bytes its name holds: bytes that are not UTF-8
    (held by Python as lone surrogates) are shown as ``\\xNN``."""
    import os

    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` with every character that is not printable on one line (controls such as tab
    and newline, U+2028, format characters, lone surrogates) written as its escape."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ConfigError(EmbedtuneError):
    """A config file or override is invalid."""


class DataError(EmbedtuneError):
    """A dataset file or record is invalid."""


class ComponentError(EmbedtuneError):
    """An unknown, duplicate or misused component."""


class PluginError(EmbedtuneError):
    """A plugin's hook failed (a lifecycle hook during a run, or any hook in strict mode)."""


class PluginLoadError(PluginError):
    """A pack failed to import or register (fatal only in strict mode)."""


class RunFolderError(EmbedtuneError):
    """A run folder exists and would be overwritten."""


class TrainingError(EmbedtuneError):
    """Training stopped for a reason the user can act on (NaN loss, out of memory...)."""


def closest(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The candidate closest to ``name`` (difflib), or None when nothing is close."""
    import difflib

    matches = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates) -> str:
    guess = closest(name, candidates)
    return f"did you mean '{guess}'?" if guess else ""
