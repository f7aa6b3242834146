"""Side-by-side comparison of backends: parallel lanes, one set of metrics, run cards.

No gradio here: the Compare tab (app/compare_tab.py) and the CLI (compare/cli.py) are thin
layers over :mod:`compare.runner` (parallel lanes), :mod:`compare.stats` (median/p95),
:mod:`compare.diff` (where answers diverge) and :mod:`compare.runcard` (export, share links).
"""
