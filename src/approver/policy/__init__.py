"""Deciding: the policy, risk classes, exposed names, look-alike names and tool pins."""
