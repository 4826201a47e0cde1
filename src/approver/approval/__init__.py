"""Approvals: calls held for a person, and keeping their clients waiting meanwhile."""
