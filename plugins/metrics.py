"""Built-in metrics plugin."""

from embedtune_core import hookimpl
