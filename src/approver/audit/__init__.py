"""Recording: the tamper-evident audit log, its reader, its writer thread, redaction and export."""
