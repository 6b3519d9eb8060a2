"""``python -m embedtune_core`` runs the ``embedtune`` command (used by ``torchrun`` and
``accelerate launch -m``, which start each process from a module).

``python -m`` puts the current folder first on ``sys.path``; it is taken off before any plugin
is loaded, so a file in the working folder named like a plugin module (``embedtune_plugins.py``,
``readers.py``...) is never imported by accident. Packs load from installed entry points, or
from ``-p MODULE`` for a module on ``PYTHONPATH``.
"""

import os
import sys


def _drop_working_folder(path: list) -> None:
    """Remove the entry ``python -m`` added for the working folder (unless PYTHONPATH names it)."""
    if sys.flags.safe_path or not path:
        return
    cwd = os.getcwd()
    explicit = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    if path[0] in ("", cwd) and cwd not in explicit:
        del path[0]


if __name__ == "__main__":
    _drop_working_folder(sys.path)
    from embedtune_core.cli.main import main

    main()
