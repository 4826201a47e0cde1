"""The ``approver`` command: its subcommands, ``doctor`` and the Qt probe."""
