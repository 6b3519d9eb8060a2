"""Built-in miners plugin."""

from embedtune_core import hookimpl
