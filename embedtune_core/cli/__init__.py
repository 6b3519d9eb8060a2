"""The ``embedtune`` command line. Each command lives in a ``cmd_<name>.py`` module here and is
imported only when it runs (or when ``--help`` lists it); none imports torch at import time."""
