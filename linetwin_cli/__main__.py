"""``python -m linetwin_cli``: the ``linetwin`` command."""

from linetwin_cli.main import main

raise SystemExit(main())
