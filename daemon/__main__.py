"""``python -m daemon`` is the ``feedwatch`` command."""

from daemon.cli.main import main

raise SystemExit(main())
