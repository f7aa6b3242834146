"""Units the checker converts between: time, length, mass, volume, speed, money.

A unit is a factor to the base unit of its dimension. Words the table does not know (apples,
students) are kept as labels: they carry no dimension and never take part in a conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    dimension: str | None
    """None for a label such as "apples"."""
    factor: sp.Expr = sp.Integer(1)  # noqa: RUF009 (immutable sympy number)


def _table() -> dict[str, Unit]:
    groups: dict[str, list[tuple[tuple[str, ...], sp.Expr]]] = {
        "time": [
            (("s", "sec", "secs", "second", "seconds"), sp.Integer(1)),
            (("min", "mins", "minute", "minutes"), sp.Integer(60)),
            (("h", "hr", "hrs", "hour", "hours"), sp.Integer(3600)),
            (("day", "days"), sp.Integer(86400)),
            (("week", "weeks"), sp.Integer(604800)),
        ],
        "length": [
            (("mm", "millimeter", "millimeters", "millimetre", "millimetres"), sp.Rational(1, 1000)),
            (("cm", "centimeter", "centimeters", "centimetre", "centimetres"), sp.Rational(1, 100)),
            (("m", "meter", "meters", "metre", "metres"), sp.Integer(1)),
            (("km", "kilometer", "kilometers", "kilometre", "kilometres"), sp.Integer(1000)),
            (("in", "inch", "inches"), sp.Rational(254, 10000)),
            (("ft", "foot", "feet"), sp.Rational(3048, 10000)),
            (("yd", "yard", "yards"), sp.Rational(9144, 10000)),
            (("mi", "mile", "miles"), sp.Rational(1609344, 1000)),
        ],
        "mass": [
            (("mg", "milligram", "milligrams"), sp.Rational(1, 1000)),
            (("g", "gram", "grams"), sp.Integer(1)),
            (("kg", "kilogram", "kilograms"), sp.Integer(1000)),
        ],
        "volume": [  # litres are the base; cubic lengths are added below (1 L = 1000 cm^3)
            (
                ("mL", "ml", "milliliter", "milliliters", "millilitre", "millilitres", "cc"),
                sp.Rational(1, 1000),
            ),
            (("L", "l", "liter", "liters", "litre", "litres"), sp.Integer(1)),
        ],
        "speed": [
            (("m/s",), sp.Integer(1)),
            (("km/h", "kmh", "kph"), sp.Rational(1000, 3600)),
            (("mph", "mi/h"), sp.Rational(1609344, 3600000)),
        ],
        "money": [
            (("$", "dollar", "dollars", "usd", "USD"), sp.Integer(1)),
            (("cent", "cents"), sp.Rational(1, 100)),
        ],
        "angle": [  # radians are the base: a bare answer may be either (see answers.compare_numbers)
            (("rad", "radian", "radians"), sp.Integer(1)),
            (("deg", "degree", "degrees", "°"), sp.pi / 180),
        ],
        "area": _powers_of_lengths(2, sp.Integer(1)),  # m^2 is the base
    }
    groups["volume"] += _powers_of_lengths(3, sp.Integer(1000))
    table: dict[str, Unit] = {}
    for dimension, rows in groups.items():
        for names, factor in rows:
            canonical = names[0]
            for name in names:
                table[name] = Unit(canonical, dimension, factor)
    return table


_LENGTHS = {"mm": sp.Rational(1, 1000), "cm": sp.Rational(1, 100), "m": sp.Integer(1), "km": sp.Integer(1000),
            "in": sp.Rational(254, 10000), "ft": sp.Rational(3048, 10000), "yd": sp.Rational(9144, 10000),
            "mi": sp.Rational(1609344, 1000)}  # fmt: skip
_SUPERSCRIPT = {2: "²", 3: "³"}


def _powers_of_lengths(power: int, per_cubic_metre: sp.Expr) -> list[tuple[tuple[str, ...], sp.Expr]]:
    """cm^2, cm², sq cm (power 2) or cm^3, cm³ (power 3), each as a factor to its dimension's base:
    square metres, or litres (``per_cubic_metre`` = 1000)."""
    rows = []
    for name, factor in _LENGTHS.items():
        names = (f"{name}^{power}", f"{name}{_SUPERSCRIPT[power]}", *((f"sq {name}",) if power == 2 else ()))
        rows.append((names, factor**power * per_cubic_metre))
    return rows


UNITS = _table()
TIME_WORDS = {"hour": "h", "minute": "min", "second": "s", "day": "day", "week": "week"}


def label(word: str) -> Unit:
    return Unit(word.lower().rstrip("s") or word, None)


def prompt_unit(prompt: str | None, dimension: str) -> list[Unit]:
    """Units of ``dimension`` the prompt names, most specific first ("how many minutes" -> min)."""
    if not prompt:
        return []
    import re

    found: list[Unit] = []
    for word in re.findall(r"[A-Za-z$/²^0-9]+", prompt):
        unit = UNITS.get(word) or UNITS.get(word.lower())
        if unit and unit.dimension == dimension and len(word) > 1 and unit not in found:
            found.append(unit)
    m = re.search(r"how (?:many|much|long)\s+(\w+)", prompt, re.IGNORECASE)
    if m:
        unit = UNITS.get(m.group(1).lower())
        if unit and unit.dimension == dimension:
            found.insert(0, unit)
    return found
