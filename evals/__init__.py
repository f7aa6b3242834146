"""Evaluation over prompt sets: every item on 1-4 lanes, verdicts checked, a leaderboard per lane.

One service below the CLI (``slm-playground eval``), the ``/eval`` API and MCP tool, and the
Eval tab; it never imports gradio. :mod:`evals.sets` loads sets, :mod:`evals.checks` grades
answers, :mod:`evals.runner` runs items (concurrently per lane), :mod:`evals.card` holds results.
"""
