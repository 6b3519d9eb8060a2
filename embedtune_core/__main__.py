"""``python -m embedtune_core`` runs the ``embedtune`` command (used by ``torchrun`` and
``accelerate launch -m``, which start each process from a module)."""

from embedtune_core.cli.main import main

if __name__ == "__main__":
    main()
