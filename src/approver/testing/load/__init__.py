"""The load test: many clients through a real gateway, nothing lost.

Run it with ``python -m approver.testing.load``; :func:`approver.testing.load.run.run_load` from code.
"""
