"""Math verification with sympy: final answers against a reference (given or computed from the
prompt), every arithmetic claim in the response, safely and within a time budget.

Public API (pure, no gradio)::

    verify_response(response, prompt=None, gold=None, budget_s=3.0) -> Verification
    render_markdown(verification) -> str
    calculate(expression, budget_s=2.0) -> str      (the calculator tool; raises CalculationError)
"""

from mathcheck.calculator import CalculationError
from mathcheck.claims import Claim
from mathcheck.sandbox import calculate, shutdown, verify_response, warm_up
from mathcheck.verify import Verification, render_markdown, verify_inprocess

__all__ = [
    "CalculationError",
    "Claim",
    "Verification",
    "calculate",
    "render_markdown",
    "shutdown",
    "verify_inprocess",
    "verify_response",
    "warm_up",
]
