# ruff: noqa: E501  (solutions are prose, one line each)
"""Build solutions.jsonl (the tuning batch) or solutions_fresh.jsonl (--fresh: written after the
tuning, never used while tuning): worked solutions in LaTeX as open models write them (numbered
bold steps, display math, \\text units, \\boxed answers), GSM8K-, MATH- and olympiad-style.

Written by the team (the verify session of issue #22), 2026-12-07, from templates of our own; no
public set is copied. Each problem is written three ways: correct; with one planted arithmetic slip
carried into the later steps (its step and right value labelled); and, for some, with correct
arithmetic but a wrong final answer (an intermediate value boxed). Labels: final verdict against
the gold, wrong steps (exact text) and their right values.

    python tests/mathcheck/data/make_solutions.py [--fresh]
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).parent
PER_TEMPLATE = 6
SLIP_STAYS_ASIDE = {"pairs", "remainder", "quadratic"}
"""Templates whose slipped step is a check on the side: the final answer is still right."""


def fmt(v: Fraction | int) -> str:
    v = Fraction(v)
    if v.denominator == 1:
        return str(v.numerator)
    for p in (1, 2, 3):
        if (v * 10**p).denominator == 1:
            return f"{float(v):.{p}f}"
    return f"{float(v):.2f}"


class Steps:
    """Writes ``lhs = value``; the step numbered ``slip`` gets a wrong value (carried on)."""

    def __init__(self, rng: random.Random, slip: int | None) -> None:
        self.rng, self.slip, self.count = rng, slip, 0
        self.wrong: str | None = None
        self.expected: str | None = None

    def eq(
        self, lhs: str, value: Fraction | int, unit: str = "", show: Callable[[Fraction], str] = fmt
    ) -> tuple[str, Fraction]:
        value = Fraction(value)
        index, self.count = self.count, self.count + 1
        if index == self.slip:
            wrong = value
            while wrong == value or wrong <= 0:
                wrong = value + self.rng.choice([-10, -3, -1, 1, 2, 4, 10])
            text = f"{lhs} = {show(wrong)}{unit}"
            self.wrong, self.expected = text, show(value)
            return text, wrong
        return f"{lhs} = {show(value)}{unit}", value


Template = Callable[[random.Random, Steps, bool], tuple[str, str, str]]
"""(rng, steps, box an intermediate) -> (prompt, gold, response)."""
TUNING: list[tuple[str, Template]] = []
FRESH: list[tuple[str, Template]] = []


def template(kind: str, fresh: bool = False) -> Callable[[Template], Template]:
    def register(fn: Template) -> Template:
        (FRESH if fresh else TUNING).append((kind, fn))
        return fn

    return register


# --- the tuning batch ------------------------------------------------------------------


@template("gsm8k")
def _pencils(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    a, b, c = r.randint(3, 9), r.choice([6, 8, 10, 12, 24]), r.randint(5, 20)
    prompt = f"Maya buys {a} packs of pencils with {b} pencils in each pack. She gives {c} pencils to her friends. How many pencils does she have left?"
    t1, total = s.eq(f"{a} \\times {b}", a * b, " \\text{ pencils}")
    t2, left = s.eq(f"{fmt(total)} - {c}", total - c, " \\text{ pencils}")
    box = total if early else left
    response = (
        "To find how many pencils Maya has left, we first find the total number of pencils and then subtract the ones she gave away.\n\n"
        f"1. **Total number of pencils:**\n   \\[\n   {t1}\n   \\]\n\n"
        f"2. **Pencils left after giving some away:**\n   \\[\n   {t2}\n   \\]\n\n"
        f"Therefore, Maya has \\(\\boxed{{{fmt(box)}}}\\) pencils left."
    )
    return prompt, fmt(a * b - c), response


@template("gsm8k")
def _eggs(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    d, k = r.randint(2, 6), r.choice([3, 4, 6])
    prompt = f"A baker buys {d} dozen eggs and uses {k} eggs for each cake. How many cakes can she bake?"
    t1, eggs = s.eq(f"{d} \\text{{ dozen}} = {d} \\times 12", 12 * d, " \\text{ eggs}")
    t2, cakes = s.eq(f"\\frac{{{fmt(eggs)}}}{{{k}}}", eggs / k, " \\text{ cakes}")
    response = (
        "Let's break this down step by step.\n\n"
        f"First, convert dozens to eggs. Since one dozen is 12 eggs:\n\\[\n{t1}\n\\]\n\n"
        f"Next, divide the eggs among the cakes, {k} eggs per cake:\n\\[\n{t2}\n\\]\n\n"
        f"The baker can bake $\\boxed{{{fmt(eggs if early else cakes)}}}$ cakes."
    )
    return prompt, fmt(Fraction(12 * d, k)), response


@template("gsm8k")
def _tickets(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    n, p, snack, paid = (
        r.randint(2, 6),
        r.choice([Fraction(25, 2), Fraction(15, 2), 9, 11]),
        r.choice([Fraction(7, 2), 4, 5]),
        100,
    )
    money = lambda v: f"{float(v):.2f}"  # noqa: E731
    prompt = f"Tickets cost ${money(p)} each. Sam buys {n} tickets and a snack for ${money(snack)}, and pays with a ${paid} bill. How much change does he get?"
    t1, cost = s.eq(f"{n} \\times \\${money(p)}", n * p, "", lambda v: "\\$" + money(v))
    t2, total = s.eq(f"\\${money(cost)} + \\${money(snack)}", cost + snack, "", lambda v: "\\$" + money(v))
    t3, change = s.eq(f"\\${paid} - \\${money(total)}", paid - total, "", lambda v: "\\$" + money(v))
    response = (
        "**Step 1: Cost of the tickets**\n"
        f"$${t1}$$\n\n"
        "**Step 2: Total spent**\n"
        f"$${t2}$$\n\n"
        "**Step 3: Change**\n"
        f"$${t3}$$\n\n"
        f"**Final Answer:** Sam gets $\\boxed{{{money(total if early else change)}}}$ dollars in change."
    )
    return prompt, money(paid - n * p - snack), response


@template("math")
def _linear(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    a, x = r.randint(2, 9), r.randint(2, 15)
    b = r.randint(3, 30)
    c = a * x + b
    prompt = f"Solve for $x$: ${a}x + {b} = {c}$."
    t1, rhs = s.eq(f"{a}x = {c} - {b}", c - b)
    t2, val = s.eq(f"x = \\frac{{{fmt(rhs)}}}{{{a}}}", rhs / a)
    response = (
        f"We need to isolate $x$. Subtracting ${b}$ from both sides gives\n\\[\n{t1}.\n\\]\n"
        f"Dividing both sides by ${a}$, we get\n\\[\n{t2}.\n\\]\n"
        f"The final answer is $\\boxed{{{fmt(rhs if early else val)}}}$."
    )
    return prompt, str(x), response


@template("math")
def _series(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    n = r.randint(12, 60)
    prompt = f"What is the sum of the integers from 1 to {n}?"
    product = n * (n + 1)
    t1, prod = s.eq(
        f"\\frac{{{n}({n} + 1)}}{{2}} = \\frac{{{n} \\cdot {n + 1}}}{{2}}",
        0 + product,
        "",
        lambda v: f"\\frac{{{fmt(v)}}}{{2}}",
    )
    t2, total = s.eq(f"\\frac{{{fmt(prod)}}}{{2}}", prod / 2)
    response = (
        "The sum of the first $n$ positive integers is given by the formula\n"
        "\\[\nS = \\frac{n(n+1)}{2}.\n\\]\n"
        f"Substituting $n = {n}$:\n\\[\nS = {t1}\n\\]\n"
        f"so\n\\[\nS = {t2}.\n\\]\n"
        f"Thus, the sum is $\\boxed{{{fmt(prod if early else total)}}}$."
    )
    return prompt, str(product // 2), response


@template("math")
def _rectangle(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    w = r.randint(3, 12)
    extra = r.randint(2, 9)
    length = w + extra
    prompt = f"A rectangle's length is {extra} cm more than its width, and its width is {w} cm. What is its area in square centimeters?"
    t1, ln = s.eq(f"\\ell = {w} + {extra}", w + extra, " \\text{ cm}")
    t2, area = s.eq(f"A = \\ell \\cdot w = {fmt(ln)} \\times {w}", ln * w, " \\text{ cm}^2")
    response = (
        f"Let the width be $w = {w}$ cm. The length is\n$$\n{t1}.\n$$\n"
        f"The area of a rectangle is length times width:\n$$\n{t2}.\n$$\n"
        f"Final Answer: The final answer is ${fmt(ln if early else area)}$. I hope it is correct."
    )
    return prompt, str(length * w), response


@template("olympiad")
def _pairs(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    p, q = r.sample([3, 5, 7, 11, 13, 17, 19, 23], 2)
    p, q = min(p, q), max(p, q)
    n = p * q
    prompt = f"Find all pairs of positive integers $(a, b)$ with $a \\le b$ such that $ab = {n}$."
    t1, _ = s.eq(f"{p} \\cdot {q}", n)
    pairs = f"(1, {n}), ({p}, {q})" if not early else f"({p}, {q})"
    response = (
        f"Since ${n} = {p} \\cdot {q}$ is a product of two distinct primes, let us check: ${t1}$.\n\n"
        f"The positive divisors of ${n}$ are $1, {p}, {q}, {n}$. Pairing each divisor $a \\le \\sqrt{{{n}}}$ with $b = {n}/a$:\n"
        f"- $a = 1$ gives $b = {n}$,\n- $a = {p}$ gives $b = \\frac{{{n}}}{{{p}}} = {q}$.\n\n"
        f"Therefore the pairs are $\\boxed{{{pairs}}}$."
    )
    return prompt, f"({p}, {q}), (1, {n})", response


@template("olympiad")
def _remainder(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    a, m = r.choice([(2, 7), (3, 7), (2, 9), (5, 11), (3, 10)])
    e = r.randint(6, 12)
    prompt = f"Find the remainder when ${a}^{{{e}}}$ is divided by ${m}$."
    t1, sq = s.eq(f"{a}^2", a * a)
    lines = [
        f"We compute powers of ${a}$ modulo ${m}$.",
        f"First, ${t1} = {fmt(sq // m)} \\cdot {m} + {fmt(sq % m)}$, so ${a}^2 \\equiv {fmt(sq % m)} \\pmod{{{m}}}$.",
    ]
    value = pow(a, e, m)
    cycle = next(k for k in range(1, m) if pow(a, k, m) == 1)
    lines.append(
        f"Since ${a}^{{{cycle}}} \\equiv 1 \\pmod{{{m}}}$ and ${e} = {cycle} \\cdot {e // cycle} + {e % cycle}$, we get ${a}^{{{e}}} \\equiv {a}^{{{e % cycle}}} \\equiv {value} \\pmod{{{m}}}$."
    )
    lines.append(f"The remainder is $\\boxed{{{(value + 1) % m if early else value}}}$.")
    return prompt, str(value), "\n\n".join(lines)


# --- the fresh batch (written after the tuning; see the report of issue #22) -------------


@template("gsm8k", fresh=True)
def _jacket(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    price, pct = r.choice([40, 60, 80, 120, 150]), r.choice([10, 20, 25, 30])
    prompt = f"A jacket costs ${price} and is on sale for {pct}% off. What is the sale price in dollars?"
    t1, off = s.eq(f"\\${price} \\times {pct}\\%", Fraction(price * pct, 100), "", lambda v: "\\$" + fmt(v))
    t2, sale = s.eq(f"\\${price} - \\${fmt(off)}", price - off, "", lambda v: "\\$" + fmt(v))
    response = (
        "To find the sale price, we calculate the discount and subtract it from the original price.\n\n"
        f"**Discount:** ${t1}$\n\n"
        f"**Sale price:** ${t2}$\n\n"
        f"The sale price of the jacket is $\\boxed{{\\${fmt(off if early else sale)}}}$."
    )
    return prompt, fmt(Fraction(price * (100 - pct), 100)), response


@template("gsm8k", fresh=True)
def _trip(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    v1, h1, v2, h2 = r.choice([50, 60, 80]), r.randint(2, 4), r.choice([40, 45, 70]), r.randint(1, 3)
    prompt = f"A bus drives {h1} hours at {v1} km/h and then {h2} hours at {v2} km/h. How many kilometers does it drive in all?"
    t1, d1 = s.eq(f"{v1} \\text{{ km/h}} \\times {h1} \\text{{ h}}", v1 * h1, " \\text{ km}")
    t2, d2 = s.eq(f"{v2} \\text{{ km/h}} \\times {h2} \\text{{ h}}", v2 * h2, " \\text{ km}")
    t3, total = s.eq(f"{fmt(d1)} + {fmt(d2)}", d1 + d2, " \\text{ km}")
    response = (
        "Distance equals speed times time.\n\n"
        f"1. First part of the trip: \\({t1}\\).\n"
        f"2. Second part of the trip: \\({t2}\\).\n"
        f"3. Total distance: \\({t3}\\).\n\n"
        f"The final answer is {fmt(d1 if early else total)}."
    )
    return prompt, str(v1 * h1 + v2 * h2), response


@template("math", fresh=True)
def _quadratic(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    p, q = r.sample(range(1, 10), 2)
    b, c = p + q, p * q
    prompt = f"Find all solutions of $x^2 - {b}x + {c} = 0$."
    t1, _ = s.eq(f"\\Delta = b^2 - 4ac = {b}^2 - 4 \\cdot {c} = {b * b} - {4 * c}", b * b - 4 * c)
    roots = f"{min(p, q)}, {max(p, q)}" if not early else str(max(p, q))
    response = (
        f"We use the quadratic formula with $a = 1$, $b = -{b}$, $c = {c}$. The discriminant is\n"
        f"$$\n{t1}.\n$$\n"
        f"Since $\\sqrt{{{b * b - 4 * c}}} = {abs(p - q)}$, the roots are\n"
        f"$$\nx = \\frac{{{b} \\pm {abs(p - q)}}}{{2}},\n$$\n"
        f"that is, $x = {max(p, q)}$ or $x = {min(p, q)}$.\n\n"
        f"**Final Answer:** $\\boxed{{{roots}}}$"
    )
    return prompt, f"{max(p, q)}, {min(p, q)}", response


@template("olympiad", fresh=True)
def _divisors(r: random.Random, s: Steps, early: bool) -> tuple[str, str, str]:
    a, b = r.randint(2, 6), r.randint(1, 4)
    n = 2**a * 3**b
    prompt = f"How many positive divisors does ${n}$ have?"
    t1, count = s.eq(f"({a} + 1)({b} + 1) = {a + 1} \\cdot {b + 1}", (a + 1) * (b + 1))
    response = (
        f"First we factor ${n}$ into primes: ${n} = 2^{{{a}}} \\cdot 3^{{{b}}}$.\n\n"
        "A divisor has the form $2^i 3^j$ with $0 \\le i \\le "
        + str(a)
        + "$ and $0 \\le j \\le "
        + str(b)
        + "$, so the number of divisors is\n"
        f"\\[\n{t1}.\n\\]\n\n"
        f"Therefore, ${n}$ has $\\boxed{{{a * b if early else fmt(count)}}}$ positive divisors."
    )
    return prompt, str((a + 1) * (b + 1)), response


def build(templates: list[tuple[str, Template]], seed: int, prefix: str) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for kind, fn in templates:
        name = fn.__name__.strip("_")
        for i in range(PER_TEMPLATE):
            state = rng.getstate()
            prompt, gold, response = fn(rng, Steps(rng, None), False)
            tags = ["worked", "model-style", kind, prefix]
            rows.append({"id": f"{prefix}-{name}-{i}", "prompt": prompt, "gold": gold, "response": response,
                         "label": {"final": "correct", "wrong_steps": []}, "tags": tags})  # fmt: skip
            slip = rng.randint(0, 1)
            rng.setstate(state)  # the same problem again, with a slip drawn from its own generator
            steps = Steps(random.Random(seed * 1000 + i), slip)
            prompt, gold, response = fn(rng, steps, False)
            if steps.wrong is not None:
                final = "correct" if name in SLIP_STAYS_ASIDE else "incorrect"
                rows.append({"id": f"{prefix}-{name}-{i}-slip", "prompt": prompt, "gold": gold, "response": response,
                             "label": {"final": final, "wrong_steps": [steps.wrong], "expected": [steps.expected]},
                             "tags": [*tags, "slip"]})  # fmt: skip
            if i % 2 == 0:
                rng.setstate(state)
                prompt, gold, response = fn(rng, Steps(rng, None), True)
                rows.append({"id": f"{prefix}-{name}-{i}-early", "prompt": prompt, "gold": gold, "response": response,
                             "label": {"final": "incorrect", "wrong_steps": []}, "tags": [*tags, "wrong final"]})  # fmt: skip
    return rows


if __name__ == "__main__":
    fresh = "--fresh" in sys.argv
    out = HERE / ("solutions_fresh.jsonl" if fresh else "solutions.jsonl")
    rows = build(FRESH if fresh else TUNING, 2207 if fresh else 22, "fresh-sol" if fresh else "sol")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} records -> {out}")
