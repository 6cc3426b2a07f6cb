"""``python -m daemon`` is the ``feedwatch`` command."""

from daemon.cli import main

raise SystemExit(main())
