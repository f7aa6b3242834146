# ruff: noqa: E501  (the problems are prose, one line each)
"""Build worked.jsonl: human-style worked solutions of grade-school word problems, each written
correctly and once more with one planted arithmetic slip (the slip's step and right value labelled).

Written for this project from templates of our own (no public set is copied). The slipped value is
carried into the later steps, as a person would, so only the planted step is false arithmetic.

    python tests/mathcheck/data/make_worked.py   # rewrites worked.jsonl next to this file
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).with_name("worked.jsonl")
PER_TEMPLATE = 7


def fmt(v: Fraction | int | float, places: int | None = None) -> str:
    v = Fraction(v)
    if places is not None:
        return f"{float(v):.{places}f}"
    if v.denominator == 1:
        return str(v.numerator)
    for p in (1, 2, 3):
        if (v * 10**p).denominator == 1:
            return f"{float(v):.{p}f}"
    return f"{float(v):.2f}"  # a person rounds a slipped value that no longer divides evenly


def money(v: Fraction | int) -> str:
    v = Fraction(v)
    return fmt(v) if v.denominator == 1 else fmt(v, 2)


class Steps:
    """Writes a solution step by step; the step numbered ``slip`` gets a wrong result."""

    def __init__(self, rng: random.Random, slip: int | None) -> None:
        self.rng, self.slip, self.count = rng, slip, 0
        self.wrong: str | None = None
        self.expected: str | None = None

    def eq(
        self, shown: str, value: Fraction | int, show: Callable[[Fraction], str] = fmt, unit: str = ""
    ) -> Fraction:
        """``shown = value``; returns the value the solution goes on with (slipped or not)."""
        value = Fraction(value)
        index = self.count
        self.count += 1
        if index == self.slip:
            wrong = value
            while wrong == value or wrong <= 0:
                wrong = value + self.rng.choice([-10, -2, -1, 1, 2, 3, 10])
                if self.rng.random() < 0.2 and value.denominator == 1 and value > 10:
                    wrong = Fraction(int(str(value.numerator)[::-1] or 0))  # swapped digits
            self.wrong = f"{shown} = {show(wrong)}{unit}"
            self.expected = show(value)
            value = wrong
        self._last = f"{shown} = {show(value)}{unit}"
        return value

    @property
    def last(self) -> str:
        return self._last


Template = Callable[[random.Random, Steps], tuple[str, str, list[str]]]
TEMPLATES: list[tuple[str, Template]] = []


def template(kind: str) -> Callable[[Template], Template]:
    def register(fn: Template) -> Template:
        TEMPLATES.append((kind, fn))
        return fn

    return register


@template("leading-dot decimal")
def _stickers(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    n, price, paid = (
        r.choice([20, 40, 60, 80]),
        r.choice([Fraction(3, 4), Fraction(1, 4), Fraction(1, 2)]),
        100,
    )
    p = fmt(price)[1:]  # ".75"
    prompt = f"Stickers cost ${fmt(price, 2)} each. Ana buys {n} and pays with ${paid}. What is her change?"
    cost = s.eq(f"{p} * {n}", price * n)
    lines = [f"Each sticker is {p} dollars.", f"She spends {s.last} dollars."]
    change = s.eq(f"{paid} - {fmt(cost)}", paid - cost)
    lines += [f"Her change is {s.last} dollars.", f"The answer is ${fmt(change)}."]
    return prompt, fmt(change), lines


@template("x for times")
def _girls(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    total, (a, b) = r.choice([90, 120, 150, 180, 210]), r.choice([(2, 3), (1, 3), (3, 5)])
    prompt = f"A school has {total} students and {a}/{b} of them are girls. How many boys are there?"
    girls = s.eq(f"{total} x {a}/{b}", Fraction(total * a, b))
    lines = [f"Girls: {s.last} girls"]
    boys = s.eq(f"{total} - {fmt(girls)}", total - girls)
    lines += [f"Boys: {s.last} boys", f"Final answer: {fmt(boys)}"]
    return prompt, fmt(boys), lines


@template("x for times")
def _tickets(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    n, p, extra = r.randint(3, 9), r.randint(4, 15), r.randint(2, 9)
    prompt = f"Tom buys {n} tickets at ${p} each and a snack for ${extra}. How much does he spend?"
    t = s.eq(f"{n} x ${p}", n * p, lambda v: "$" + fmt(v))
    lines = [f"Tickets: {s.last}"]
    tot = s.eq(f"${fmt(t)} + ${extra}", t + extra, lambda v: "$" + fmt(v))
    lines += [f"Total: {s.last}", f"He spends ${fmt(tot)}."]
    return prompt, fmt(tot), lines


@template("labels between numbers")
def _pupils(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    tot, c, ch = r.randint(30, 60), r.randint(5, 12), r.randint(3, 9)
    prompt = f"A class has {tot} pupils; {c} play chess and {ch} sing in the choir (no one does both). How many do neither?"
    left = s.eq(f"{tot} total pupils - {c} chess - {ch} choir", tot - c - ch)
    lines = ["Take away each club from the class:", f"{s.last} pupils do neither.", f"#### {fmt(left)}"]
    return prompt, fmt(left), lines


@template("labels between numbers")
def _legs(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    cats, birds = r.randint(3, 12), r.randint(2, 10)
    prompt = f"A farm has {cats} cats and {birds} hens. How many legs do they have together?"
    cl = s.eq(f"{cats} cats * 4 legs/cat", cats * 4, unit=" legs")
    lines = [f"{s.last}"]
    hl = s.eq(f"{birds} hens * 2 legs/hen", birds * 2, unit=" legs")
    lines.append(f"{s.last}")
    tot = s.eq(f"{fmt(cl)} legs + {fmt(hl)} legs", cl + hl, unit=" legs")
    lines += [f"Together: {s.last}", f"So there are {fmt(tot)} legs."]
    return prompt, fmt(tot), lines


@template("if premise")
def _cars(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    tot = r.choice([90, 120, 75, 64])
    red = r.randint(10, tot // 2 - 5)
    prompt = f"A lot has {tot} cars, all red or blue. There are {red} red cars. How many are blue, and how many more blue than red?"
    blue = s.eq(f"{tot}-{red}", tot - red)
    lines = [f"If there were {red} red cars, the blue ones were {s.last}."]
    more = s.eq(f"{fmt(blue)}-{red}", blue - red)
    lines += [f"If blue is {fmt(blue)}, then blue exceeds red by {s.last}.", f"The answer is {fmt(more)}."]
    return prompt, fmt(more), lines


@template("would/should")
def _cups(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    batches, cups, have = r.randint(2, 6), r.randint(2, 5), r.randint(1, 3)
    prompt = f"A cake needs {cups} cups of flour. Lee wants {batches} cakes and has {have} cups. How many more cups does he need?"
    need = s.eq(f"{batches} * {cups}", batches * cups)
    lines = [f"He would need {s.last} cups in all."]
    more = s.eq(f"{fmt(need)} - {have}", need - have)
    lines += [f"He should buy {s.last} more cups.", f"**Answer:** {fmt(more)} cups"]
    return prompt, fmt(more), lines


@template("a total of")
def _total_of(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    a, b, price = r.randint(3, 12), r.randint(3, 12), r.randint(2, 6)
    prompt = f"Mia drinks {a} cups of tea on Monday and {b} on Tuesday. Each cup costs ${price}. What did she spend?"
    t = s.eq(f"{a} + {b}", a + b)
    lines = [f"She drank a total of {s.last} cups."]
    cost = s.eq(f"{fmt(t)} * ${price}", t * price, lambda v: "$" + fmt(v))
    lines += [f"That costs {s.last}.", f"The final answer is ${fmt(cost)}."]
    return prompt, fmt(cost), lines


@template("by with units")
def _grams(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    start, end, days = r.choice([500, 600, 450]), 0, r.choice([2, 3, 5])
    end = start + days * r.randint(4, 12)
    prompt = f"A puppy weighed {start} g and {days} days later {end} g. How much did it gain per day?"
    gain = s.eq(f"{end} g - {start} g", end - start, unit=" g")
    lines = [f"It grew by {s.last}."]
    per = s.eq(f"{fmt(gain)} g / {days}", gain / days, unit=" g")
    lines += [f"Per day: {s.last}.", f"Answer: {fmt(per)} g per day"]
    return prompt, fmt(per), lines


@template("chain starting with a name")
def _names(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    a, b = r.randint(10, 30), r.randint(5, 20)
    c = r.randint(5, a + b - 3)
    prompt = f"Maria ran {a} minutes and then {b} minutes; Joe ran {c} minutes less than Maria. How long did Joe run?"
    m = s.eq(f"Maria = {a} + {b}", a + b, unit=" minutes")
    lines = [s.last]
    j = s.eq(f"Joe = {fmt(m)} - {c}", m - c, unit=" minutes")
    lines += [s.last, f"Joe ran {fmt(j)} minutes."]
    return prompt, fmt(j), lines


@template("described quantity first")
def _apples(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    days, each, bought = r.randint(2, 6), r.choice([Fraction(5, 2), Fraction(3, 2), 2, 3]), r.randint(20, 30)
    total = Fraction(days) * each
    prompt = (
        f"Sam eats {fmt(each)} apples a day for {days} days. He bought {bought} apples. How many are left?"
    )
    ate = s.eq(f"ate {fmt(total)} apples = {days} * {fmt(each)}", total, unit=" apples")
    lines = [f"He {s.last}."]
    left = s.eq(f"{bought} - {fmt(ate)}", bought - ate)
    lines += [f"Left: {s.last} apples.", f"\\boxed{{{fmt(left)}}}"]
    return prompt, fmt(left), lines


@template("precision")
def _pizza(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    slices, people = r.choice([27, 30, 33, 39, 45]), 4
    prompt = f"{slices} slices are shared equally by {people} friends. How many slices does each get?"
    each = s.eq(f"{slices} / {people}", Fraction(slices, people))
    lines = [f"Each friend gets {s.last} slices.", f"So each gets {fmt(each)} slices."]
    return prompt, fmt(each), lines


@template("units mixed")
def _hours(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    h, d, rate = r.randint(2, 6), r.randint(3, 6), r.randint(9, 20)
    prompt = f"Kim works {h} hours a day for {d} days at ${rate} an hour. What does she earn?"
    tot = s.eq(f"{h} hours * {d} days", h * d, unit=" hours")
    lines = [f"Hours worked: {s.last}."]
    pay = s.eq(f"{fmt(tot)} * {rate}", tot * rate)
    lines += [f"Pay: {s.last} dollars.", f"She earns ${fmt(pay)}."]
    return prompt, fmt(pay), lines


@template("percent")
def _discount(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    price, pct = r.choice([40, 60, 80, 120, 150, 200]), r.choice([10, 20, 25, 30])
    prompt = f"A coat costs ${price} and is {pct}% off. What is the sale price?"
    off = s.eq(f"{pct}% of {price}", Fraction(pct * price, 100))
    lines = [f"The discount is {s.last} dollars."]
    sale = s.eq(f"{price} - {fmt(off)}", price - off)
    lines += [f"Sale price: {s.last}.", f"The coat costs ${fmt(sale)}."]
    return prompt, fmt(sale), lines


@template("money")
def _groceries(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    a, b, n = Fraction(r.randint(105, 499), 100), Fraction(r.randint(105, 499), 100), r.randint(2, 4)
    prompt = f"Milk costs ${money(a)} and bread ${money(b)}. Jo buys {n} of each. What is the bill?"
    one = s.eq(f"${money(a)} + ${money(b)}", a + b, lambda v: "$" + money(v))
    lines = [f"One of each: {s.last}."]
    bill = s.eq(f"{n} × ${money(one)}", n * one, lambda v: "$" + money(v))
    lines += [f"{n} of each: {s.last}.", f"Final answer: ${money(bill)}"]
    return prompt, money(bill), lines


@template("time conversion")
def _walk(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    h, km = r.choice([2, 3, 4]), r.choice([2, 3])
    prompt = f"Ravi walks {km} km every hour for {h} hours. How many km and how many minutes is that?"
    s.eq(f"{h} * 60", h * 60, unit=" minutes")  # not used further: a slip here leaves the answer right
    lines = [f"{h} hours is {s.last}."]
    dist = s.eq(f"{km} km/h * {h} h", km * h, unit=" km")
    lines += [f"Distance: {s.last}.", f"He walks {fmt(dist)} km."]
    return prompt, fmt(dist), lines


@template("fraction")
def _fraction(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    tot, (a, b) = r.choice([48, 60, 72, 96]), r.choice([(3, 4), (2, 3), (5, 6), (1, 4)])
    prompt = f"A jar holds {tot} marbles; {a}/{b} are blue and the rest green. How many are green?"
    blue = s.eq(f"{a}/{b} × {tot}", Fraction(a * tot, b))
    lines = [f"Blue: {s.last}"]
    green = s.eq(f"{tot} − {fmt(blue)}", tot - blue)
    lines += [f"Green: {s.last}", f"There are {fmt(green)} green marbles."]
    return prompt, fmt(green), lines


@template("latex steps")
def _latex(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    n, p, k = r.randint(3, 9), r.randint(6, 15), r.randint(2, 5)
    prompt = f"Each of {n} boxes has {p} pens; {k} pens are lost from each box. How many pens remain?"
    per = s.eq(f"{p} - {k}", p - k)
    lines = [f"Per box: ${s.last}$"]
    rem = s.eq(f"{n} \\times {fmt(per)}", n * per)
    lines += [f"In all: ${s.last}$", f"$\\boxed{{{fmt(rem)}}}$"]
    return prompt, fmt(rem), lines


@template("word times")
def _rows(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    rows, seats, empty = r.randint(5, 20), r.randint(8, 25), r.randint(3, 30)
    prompt = f"A hall has {rows} rows of {seats} seats; {empty} are empty. How many are taken?"
    tot = s.eq(f"{rows} times {seats}", rows * seats)
    lines = [f"Seats: {s.last}"]
    taken = s.eq(f"{fmt(tot)} minus {empty}", tot - empty)
    lines += [f"Taken: {s.last}", f"So {fmt(taken)} seats are taken."]
    return prompt, fmt(taken), lines


@template("parentheses")
def _average(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    a, b, c = (r.randint(60, 99) for _ in range(3))
    a -= (a + b + c) % 3
    prompt = f"Lina scored {a}, {b} and {c} on three tests. What is her average?"
    avg = s.eq(f"({a} + {b} + {c}) / 3", Fraction(a + b + c, 3))
    lines = [f"Average = {s.last}", f"Her average is {fmt(avg)}."]
    return prompt, fmt(avg), lines


@template("speed")
def _speed(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    v, t1, t2 = r.choice([40, 50, 60, 80]), r.choice([Fraction(3, 2), 2, Fraction(5, 2)]), r.randint(1, 3)
    prompt = f"A bus drives {fmt(t1)} h at {v} km/h, then {t2} h at the same speed. How far does it go?"
    d1 = s.eq(f"{v} km/h × {fmt(t1)} h", v * t1, unit=" km")
    lines = [f"First part: {s.last}."]
    d2 = s.eq(f"{v} × {t2}", v * t2, unit=" km")
    lines.append(f"Second part: {s.last}.")
    d = s.eq(f"{fmt(d1)} + {fmt(d2)}", d1 + d2, unit=" km")
    lines += [f"Total distance: {s.last}.", f"The bus travels {fmt(d)} km."]
    return prompt, fmt(d), lines


@template("each so")
def _eggs(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    boxes, per, broken = r.randint(4, 12), r.choice([6, 10, 12]), r.randint(2, 9)
    prompt = f"A shop gets {boxes} boxes of {per} eggs and {broken} eggs break. How many are left to sell?"
    tot = s.eq(f"{boxes} * {per}", boxes * per)
    lines = [f"Each box has {per} eggs, so {boxes} boxes have {s.last} eggs."]
    left = s.eq(f"{fmt(tot)} - {broken}", tot - broken)
    lines += [f"Then {s.last} eggs are left.", f"Answer: {fmt(left)}"]
    return prompt, fmt(left), lines


@template("hypotheticals kept")
def _hypo(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    n, p = r.randint(3, 8), r.randint(3, 9)
    prompt = f"Pens cost ${p}. Eva buys {n} pens. How much does she pay?"
    cost = s.eq(f"{n} * {p}", n * p)
    wrong_sum = n + p + 1
    lines = [
        "Note: 1 pack = 10 pens, but she buys single pens.",
        f"A common mistake is to add: {n} + {p} = {wrong_sum} is wrong.",
        f"She pays {s.last} dollars.",
        f"For example, if she had bought one more, it would have been {n + 1} * {p} = {(n + 1) * p + 2}, but she did not.",
        f"Final answer: ${fmt(cost)}",
    ]
    return prompt, fmt(cost), lines


@template("division remainder")
def _buses(r: random.Random, s: Steps) -> tuple[str, str, list[str]]:
    per, buses = r.choice([20, 25, 30, 40]), r.randint(3, 9)
    kids = per * buses
    prompt = f"{kids} children go on a trip; each bus seats {per}. How many buses are needed, and what do they cost at $150 each?"
    b = s.eq(f"{kids} ÷ {per}", Fraction(kids, per))
    lines = [f"Buses needed: {s.last}."]
    cost = s.eq(f"{fmt(b)} × 150", b * 150)
    lines += [f"Cost: {s.last} dollars.", f"The trip costs ${fmt(cost)}."]
    return prompt, fmt(cost), lines


def build(seed: int = 13) -> list[dict[str, object]]:
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    for kind, fn in TEMPLATES:
        for k in range(PER_TEMPLATE):
            state = rng.getstate()
            probe = Steps(random.Random(0), None)
            prompt, gold, lines = fn(rng, probe)
            name = f"{fn.__name__.strip('_')}-{k}"
            records.append(_record(name, kind, prompt, gold, lines, None, None, None))
            slip = rng.randrange(probe.count)
            rng.setstate(state)
            steps = Steps(random.Random(rng.random()), slip)
            rng.setstate(state)
            prompt2, _, lines2 = fn(rng, steps)
            assert prompt2 == prompt and steps.wrong is not None
            records.append(
                _record(name + "-slip", kind, prompt, gold, lines2, steps.wrong, steps.expected, slip)
            )
    return records


def _record(
    name: str, kind: str, prompt: str, gold: str, lines: list[str], wrong: str | None, expected: str | None,
    position: int | None,
) -> dict[str, object]:  # fmt: skip
    response = "\n".join(lines)
    label: dict[str, object] = {"final": "correct", "wrong_steps": []}
    if wrong is not None:
        assert response.count(wrong) == 1, (name, wrong)
        answer_line = lines[-1]
        label = {"final": "correct" if gold in answer_line.replace(",", "") and _ends(answer_line, gold) else "incorrect",
                 "wrong_steps": [wrong], "expected": [expected], "slip_step": position}  # fmt: skip
    return {"id": name, "prompt": prompt, "gold": gold, "response": response, "label": label,
            "tags": ["worked", kind] + (["slip"] if wrong else [])}  # fmt: skip


def _ends(line: str, gold: str) -> bool:
    import re

    nums = re.findall(r"\d+(?:\.\d+)?", line.replace(",", ""))
    return bool(nums) and nums[-1] == gold


if __name__ == "__main__":
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} records ({sum(1 for r in rows if 'slip' in r['tags'])} with a slip) -> {OUT}")
