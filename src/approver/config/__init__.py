"""approver's files: servers.json, policy and settings paths, secrets, client tokens, schemas."""
