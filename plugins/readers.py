"""Built-in readers plugin."""

from embedtune_core import hookimpl
