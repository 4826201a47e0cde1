"""The first-run demo: a sandboxed file server, a demo policy and a small scripted agent.

``approver demo`` prepares a temporary folder with :func:`approver.demo.sandbox.prepare_demo`,
starts approver on it and lets :func:`approver.demo.agent.run_agent` make a few calls, so a new
user sees a call allowed, one denied by policy and two held for their approval.
"""
