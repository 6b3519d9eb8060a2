"""Built-in losses plugin."""

from embedtune_core import hookimpl
