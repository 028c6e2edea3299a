"""``python -m explorer`` is the ``backchain`` command."""

from explorer.cli import main

raise SystemExit(main())
