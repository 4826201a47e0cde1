"""Run approver as ``python -m approver``."""

from approver.cli import main

raise SystemExit(main())
