"""Run approver as ``python -m approver``."""

from approver.cli.main import main

raise SystemExit(main())
