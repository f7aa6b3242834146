"""A small, whitelisted math parser: model text in, sympy expression out.

Model output is never handed to ``sympify``/``eval``. This module tokenizes plain text, Unicode math
and the LaTeX subset models write (\\frac, \\sqrt, \\times, \\cdot, powers, \\text units) and builds
sympy objects itself by recursive descent, checking sizes on the way: exponents, factorials, digit
counts and nesting depth are capped so that no expression can be too big to evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from mathcheck.units import UNITS, Unit, label

MAX_EXPR_CHARS = 600
MAX_DEPTH = 40
MAX_EXPONENT = 2000
MAX_RESULT_DIGITS = 5000
MAX_FACTORIAL = 300
MAX_SYMBOLIC_EXPONENT = 60
MAX_BINOMIAL = 1000


class ParseError(ValueError):
    """The text is not an expression this parser accepts (or is too big to evaluate safely)."""


FUNCTIONS = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
    "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "ln": sp.log, "exp": sp.exp,
    "sqrt": sp.sqrt, "abs": sp.Abs, "log": None,
}  # fmt: skip
MULTI_ARG: dict[str, Callable[..., sp.Expr]] = {"gcd": sp.gcd, "lcm": sp.lcm}
"""Functions of whole numbers that take a list: \\gcd(84, 126)."""
GREEK = {"alpha", "beta", "gamma", "theta", "lambda", "mu", "phi", "omega", "sigma", "tau"}
WORD_OPS = {"times": "*", "plus": "+", "minus": "-", "over": "/"}
SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|\\left|\\right|\\big|\\Big|\\displaystyle|~")
_NUMBER = re.compile(r"\d{1,3}(?:(?:,|\{,\})\d{3})+(?:\.\d+)?(?![\d])|\d+(?:\.\d+)?|\.\d+")
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|textrm|mbox|operatorname|mathit|textbf|mathbf)\s*\{([^{}]*)\}")
_SUPERSCRIPTS = {"²": "2", "³": "3", "¹": "1", "⁴": "4"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, id, func, op, unit, word, cmd
    text: str
    value: sp.Expr | None = None
    decimals: int = 0
    unit: Unit | None = None


def _clean(text: str) -> str:
    text = _TEXT_CMD.sub(lambda m: " " + m.group(1).strip(), text)
    text = SPACING.sub(" ", text)
    for a, b in (("−", "-"), ("–", "-"), ("×", "*"), ("·", "*"), ("⋅", "*"), ("÷", "/"), ("**", "^")):
        text = text.replace(a, b)
    text = text.replace("\\cdot", "*").replace("\\times", "*").replace("\\ast", "*").replace("\\div", "/")
    text = text.replace("\\%", "%").replace("\\$", "$").replace("π", "\\pi ")
    for dfrac in ("\\dfrac", "\\tfrac"):
        text = text.replace(dfrac, "\\frac")
    for dbinom in ("\\dbinom", "\\tbinom"):
        text = text.replace(dbinom, "\\binom")
    for latex, bracket in (("\\lfloor", "⌊"), ("\\rfloor", "⌋"), ("\\lceil", "⌈"), ("\\rceil", "⌉")):
        text = text.replace(latex, bracket)
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)  # \frac34 is 3/4
    text = re.sub(r"\^\s*(?:\{\s*\\circ\s*\}|\\circ)|°", " deg ", text)  # 180^\circ: degrees, a unit
    return text


Functions = Mapping[str, Callable[[sp.Expr], sp.Expr]]
"""Extra one-argument functions a caller allows beside :data:`FUNCTIONS` (the calculator's)."""


def tokenize(text: str, functions: Functions | None = None, imaginary: bool = False) -> list[Token]:
    """Split text into tokens; raises ParseError on anything outside the whitelist.
    ``imaginary``: a lone ``i`` is the imaginary unit (the text works with complex numbers)."""
    extra = functions or {}
    if len(text) > MAX_EXPR_CHARS:
        raise ParseError("expression too long")
    text = _clean(text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m:
            raw = m.group(0).replace("{,}", "").replace(",", "")
            dec = len(raw.split(".")[1]) if "." in raw else 0
            if len(raw) > 200:
                raise ParseError("number too long")
            tokens.append(Token("num", m.group(0), sp.Rational(raw), dec))
            i = m.end()
            continue
        if c in _SUPERSCRIPTS:
            tokens += [Token("op", "^"), Token("num", c, sp.Integer(_SUPERSCRIPTS[c]))]
            i += 1
            continue
        if c == "√":
            tokens.append(Token("func", "sqrt"))
            i += 1
            continue
        if c == "\\":
            m = re.compile(r"\\([A-Za-z]+)").match(text, i)
            if not m:
                raise ParseError(f"unexpected {text[i : i + 2]!r}")
            name = m.group(1)
            i = m.end()
            if name in ("frac", "sqrt", "binom"):
                tokens.append(Token("cmd", name))
            elif name == "pi":
                tokens.append(Token("id", "pi", sp.pi))
            elif name in FUNCTIONS or name in MULTI_ARG:
                tokens.append(Token("func", name))
            elif name in ("bmod", "mod"):
                tokens.append(Token("op", "mod"))  # 17 \bmod 5: the remainder
            elif name in GREEK:
                tokens.append(Token("id", name, sp.Symbol(name)))
            else:
                raise ParseError(f"unsupported LaTeX command \\{name}")
            continue
        if c.isalpha():
            m = re.compile(r"[A-Za-z]+").match(text, i)
            assert m is not None
            word = m.group(0)
            after_number = bool(tokens) and (
                tokens[-1].kind in ("num", "unit") or tokens[-1].text in ("%", "pi")
            )  # "25π square units": a label after π too
            unit = None if word in ("of", "squared", "cubed") else _match_unit(text, i, after_number)
            if unit is not None:
                u, end = unit
                tokens.append(Token("unit", text[i:end], unit=u))
                i = end
                continue
            i = m.end()
            if word in FUNCTIONS or word in extra:
                tokens.append(Token("func", word))
            elif word.lower() in MULTI_ARG and text[m.end() : m.end() + 1] == "(":
                tokens.append(Token("func", word.lower()))  # gcd(84, 126), \operatorname{lcm}(4, 6)
            elif word == "of" and tokens and tokens[-1].text == "%":
                tokens.append(Token("op", "*"))  # 15% of 80
            elif word in ("squared", "cubed") and tokens:
                tokens += [Token("op", "^"), Token("num", word, sp.Integer(2 if word == "squared" else 3))]
            elif word in WORD_OPS:
                tokens.append(Token("op", WORD_OPS[word]))
            elif word == "x" and _times_x(text, m.start(), tokens):
                tokens.append(Token("op", "*"))
            elif word == "pi":
                tokens.append(Token("id", "pi", sp.pi))
            elif word == "i" and imaginary:
                tokens.append(Token("id", "i", sp.I))
            elif len(word) == 1 or word in GREEK:
                tokens.append(Token("id", word, sp.E if word == "e" else sp.Symbol(word)))
            elif set(word) <= set("xyz") and not after_number:
                tokens += [Token("id", ch, sp.Symbol(ch)) for ch in word]  # xy -> x*y
            elif after_number and word not in ("of", "squared", "cubed"):
                per = re.compile(r"/([A-Za-z]{2,})\b").match(text, i)
                if per and not _next_is_number(text, per.end()):
                    i = per.end()  # "4 legs/cat": one label, not a division
                tokens.append(Token("unit", word, unit=label(word)))  # "12 apples": a label
            else:
                raise ParseError(f"unknown word {word!r}")
            continue
        if c == "$":
            tokens.append(Token("unit", "$", unit=UNITS["$"]))
            i += 1
            continue
        if c == "_":
            # subscripted variable: x_1, x_{2}
            base = re.compile(r"_\s*\{?\s*(\d{1,3})\s*\}?").match(text, i)
            if base and tokens and tokens[-1].kind == "func" and tokens[-1].text == "log":
                tokens[-1] = Token("func", "log", sp.Integer(base.group(1)))  # \log_2 64
                i = base.end()
                continue
            m = re.compile(r"_\{?([A-Za-z0-9]{1,3})\}?").match(text, i)
            if not m or not tokens or tokens[-1].kind != "id":
                raise ParseError("stray subscript")
            prev = tokens.pop()
            name = f"{prev.text}_{m.group(1)}"
            if prev.text == "log":
                raise ParseError("log with subscript")
            tokens.append(Token("id", name, sp.Symbol(name)))
            i = m.end()
            continue
        rate = re.compile(r"/\s*([A-Za-z]{2,})\b").match(text, i) if c == "/" else None
        if rate and tokens and tokens[-1].kind in ("num", "unit") and rate.group(1) not in FUNCTIONS:
            tokens.append(Token("unit", rate.group(0), unit=label("per " + rate.group(1))))  # $15/hour
            i = rate.end()
            continue
        if c in "+-*/^()[]{}!%|,⌊⌋⌈⌉":
            tokens.append(Token("op", c))
            i += 1
            continue
        raise ParseError(f"unexpected character {c!r}")
    return tokens


def _next_is_number(text: str, i: int) -> bool:
    return bool(re.compile(r"\s*[\d(]").match(text, i))


def _times_x(text: str, at: int, tokens: list[Token]) -> bool:
    """ "150 x 2/3", "4 x $6": a spaced x between quantities is a times sign, "2x(x-1)" is not."""
    spaced = at > 0 and text[at - 1].isspace() and text[at + 1 : at + 2].isspace()
    after_quantity = bool(tokens) and (tokens[-1].kind == "num" or tokens[-1].text in (")", "%"))
    return spaced and after_quantity and bool(re.compile(r"\s*(?:[\d(.]|\$\s*\d)").match(text, at + 1))


def _match_unit(text: str, i: int, after_number: bool) -> tuple[Unit, int] | None:
    """A unit word at ``i`` (longest match, word-bounded); single letters only right after a number."""
    if not after_number:
        return None
    m = re.compile(r"[A-Za-z]+(?:/[A-Za-z]+)?(?:\^?[23²³])?").match(text, i)
    if not m:
        return None
    top, _, bottom = m.group(0).partition("/")
    if bottom and m.group(0) not in UNITS and (top in UNITS or top.lower() in UNITS) and bottom in UNITS:
        return Unit(m.group(0), None), m.end()  # km/L, g/cm: a rate we keep as a label
    for end in (m.end(), i + len(re.compile(r"[A-Za-z]+").match(text, i).group(0))):  # type: ignore[union-attr]
        cand = text[i:end]
        unit = UNITS.get(cand) or UNITS.get(cand.lower())
        if unit is None:
            base = re.match(r"[A-Za-z]+", cand)
            known_base = base is not None and base.group(0) in UNITS and len(base.group(0)) > 1
            if end == m.end() and known_base and "^" in cand:
                return Unit(cand, None), end  # cm^3: a unit we do not convert, kept as a label
            continue
        if len(cand) == 1 and re.compile(r"\s*[\w(\\{]").match(text, end) and cand not in ("h", "s"):
            continue  # "3 m x" is too ambiguous; a trailing single letter is a unit
        if len(cand) == 1 and (i == 0 or not text[i - 1].isspace()):
            continue  # "2h" with no space: a product, not hours
        return unit, end
    return None


def _same(value: sp.Expr) -> sp.Expr:
    return value


_BRACKETED: dict[str, Callable[[sp.Expr], sp.Expr]] = {"|": sp.Abs, "⌋": sp.floor, "⌉": sp.ceiling}
"""What a bracket pair does to its content: |x|, ⌊x⌋ (\\lfloor x \\rfloor), ⌈x⌉."""


@dataclass
class Parsed:
    expr: sp.Expr
    units: list[Unit] = field(default_factory=list)
    bare_log: bool = False


class _Parser:
    def __init__(
        self,
        tokens: list[Token],
        convert_units: bool,
        log_base: int | None,
        functions: Functions | None = None,
    ) -> None:
        self.functions = functions or {}
        self.toks = tokens
        self.pos = 0
        self.depth = 0
        self.convert_units = convert_units
        self.log_base = log_base
        self.units: list[Unit] = []
        self.bare_log = False
        self.modulus: int | None = None
        """Set where the text is a ring expression (+, -, ×, powers) read modulo this number."""

    def peek(self, k: int = 0) -> Token | None:
        j = self.pos + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, text: str | None = None) -> Token:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text):
            raise ParseError(f"expected {text or 'more input'}")
        self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text == text

    def expr(self) -> sp.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("too deeply nested")
        value = self.term()
        while self.at("+") or self.at("-"):
            op = self.take().text
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        self.depth -= 1
        return value

    def term(self) -> sp.Expr:
        value = self.unary()
        while True:
            tok = self.peek()
            if tok is None:
                return value
            if tok.kind == "op" and tok.text in ("*", "/", "mod"):
                self.pos += 1
                rhs = self.unary()
                if tok.text == "mod":
                    if not (value.is_Integer and rhs.is_Integer and rhs > 0):
                        raise ParseError("mod of numbers that are not whole")
                    value = value % rhs
                elif tok.text == "/":
                    if rhs == 0:
                        raise ParseError("division by zero")
                    value = value / rhs
                else:
                    value = value * rhs
            elif self._starts_atom(tok) and not (tok.kind == "num" and self._prev_kind() in ("num", "unit")):
                value = value * self.unary()
            else:
                return value

    def _prev_kind(self) -> str:
        return self.toks[self.pos - 1].kind if self.pos else ""

    @staticmethod
    def _starts_atom(tok: Token) -> bool:
        return tok.kind in ("num", "id", "func", "cmd") or (tok.kind == "op" and tok.text in "([{⌊⌈")

    def unary(self) -> sp.Expr:
        if self.at("-"):
            self.pos += 1
            return -self.unary()
        if self.at("+"):
            self.pos += 1
            return self.unary()
        return self.power()

    def power(self) -> sp.Expr:
        base = self.postfix()
        if self.at("^"):
            self.pos += 1
            exponent = self.unary() if not self.at("{") else self.group()
            base = safe_pow(base, exponent, self.modulus)
            base = self.postfix_ops(base)
        return base

    def postfix(self) -> sp.Expr:
        return self.postfix_ops(self.atom())

    def postfix_ops(self, value: sp.Expr) -> sp.Expr:
        while True:
            tok = self.peek()
            if tok is None:
                return value
            if tok.kind == "op" and tok.text == "!":
                self.pos += 1
                if not (value.is_Integer and 0 <= value <= MAX_FACTORIAL):
                    raise ParseError("factorial too large or not of a whole number")
                value = sp.factorial(value)
            elif tok.kind == "op" and tok.text == "%":
                self.pos += 1
                value = value / 100
            elif tok.kind == "unit":
                self.pos += 1
                assert tok.unit is not None
                self.units.append(tok.unit)
                first = tok.unit
                if self.convert_units:
                    value = value * tok.unit.factor
                while first.dimension and self._compound_next(first):  # 3 h 15 min
                    num, unit = self.toks[self.pos], self.toks[self.pos + 1]
                    self.pos += 2
                    assert unit.unit is not None
                    assert num.value is not None
                    self.units.append(unit.unit)
                    scale = unit.unit.factor if self.convert_units else unit.unit.factor / first.factor
                    value = value + num.value * scale
            else:
                return value

    def _compound_next(self, first: Unit) -> bool:
        num, unit = self.peek(), self.peek(1)
        return (
            num is not None and num.kind == "num" and unit is not None and unit.kind == "unit"
            and unit.unit is not None and unit.unit.dimension == first.dimension and unit.unit != first
        )  # fmt: skip

    def group(self) -> sp.Expr:
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom(self) -> sp.Expr:
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end")
        self.pos += 1
        if tok.kind == "num":
            assert tok.value is not None
            nxt = self.peek()
            if nxt is not None and nxt.kind == "cmd" and nxt.text == "frac" and tok.decimals == 0:
                # LaTeX mixed number 2\frac{1}{2}
                save = self.pos
                self.pos += 1
                num, den = self.group(), self.group()
                if num.is_Integer and den.is_Integer and 0 < num < den:
                    return tok.value + num / den
                self.pos = save
            return tok.value
        if tok.kind == "unit" and tok.text == "$":
            return self.postfix()  # $12 -> 12
        if tok.kind == "id":
            assert tok.value is not None
            return tok.value
        if tok.kind == "op" and tok.text in "([{|⌊⌈":
            close = {"(": ")", "[": "]", "{": "}", "|": "|", "⌊": "⌋", "⌈": "⌉"}[tok.text]
            value = self.expr()
            self.take(close)
            return _BRACKETED.get(close, _same)(value)
        if tok.kind == "cmd" and tok.text == "frac":
            num = self._frac_arg()
            den = self._frac_arg()
            if den == 0:
                raise ParseError("division by zero")
            return num / den
        if tok.kind == "cmd" and tok.text == "binom":
            n, k = self.group(), self.group()
            if not (n.is_Integer and k.is_Integer and 0 <= n <= MAX_BINOMIAL):
                raise ParseError("binomial coefficient of numbers too large or not whole")
            return sp.binomial(n, k)
        if tok.kind == "cmd" and tok.text == "sqrt":
            if self.at("["):
                self.pos += 1
                index = self.expr()
                self.take("]")
                return safe_pow(self.group(), 1 / index)
            return sp.sqrt(self.group() if self.at("{") else self.postfix())
        if tok.kind == "func":
            return self.function(tok.text, tok.value)
        raise ParseError(f"unexpected {tok.text!r}")

    def _frac_arg(self) -> sp.Expr:
        if self.at("{"):
            return self.group()
        tok = self.take()  # \frac12
        if tok.kind == "num" and tok.text.isdigit():
            return tok.value
        if tok.kind == "id":
            return tok.value
        raise ParseError("bad \\frac argument")

    def function(self, name: str, base: sp.Expr | None = None) -> sp.Expr:
        """``name(arg)``; ``base``: a logarithm's written base (\\log_2 64)."""
        if name in MULTI_ARG:
            return self.whole_numbers_function(name)
        if name == "log" and self.at("_"):
            raise ParseError("log base")
        power = None
        if self.at("^"):  # sin^2 x
            self.pos += 1
            power = self.group() if self.at("{") else self.atom()
        arg = self.atom() if self.at("(") or self.at("{") else self.power()
        if name == "log" and base is not None:
            if base <= 1:
                raise ParseError("log base")
            value = sp.log(arg, base)
        elif name == "log":
            self.bare_log = True
            value = sp.log(arg) if self.log_base is None else sp.log(arg, self.log_base)
        else:
            value = (self.functions.get(name) or FUNCTIONS[name])(arg)
        return safe_pow(value, power) if power is not None else value

    def whole_numbers_function(self, name: str) -> sp.Expr:
        self.take("(")
        args = [self.expr()]
        while self.at(","):
            self.pos += 1
            args.append(self.expr())
        self.take(")")
        if len(args) < 2 or not all(a.is_Integer for a in args):
            raise ParseError(f"{name} of numbers that are not whole")
        value = args[0]
        for arg in args[1:]:
            value = MULTI_ARG[name](value, arg)
        return value


def safe_pow(base: sp.Expr, exponent: sp.Expr, modulus: int | None = None) -> sp.Expr:
    """``base ** exponent`` unless the result would be huge (a power tower, 9^9^9); with a
    ``modulus`` (a congruence of whole numbers), a huge power is its residue: 2^{2026} mod 7 is 2."""
    whole = base.is_Integer and exponent.is_Integer and exponent >= 0
    if modulus and whole and (abs(exponent) > MAX_EXPONENT or _digits(base, exponent) > MAX_RESULT_DIGITS):
        return sp.Integer(pow(int(base), int(exponent), modulus))
    if exponent.is_Number:
        if abs(exponent) > MAX_EXPONENT:
            raise ParseError("exponent too large")
        if base.free_symbols and abs(exponent) > MAX_SYMBOLIC_EXPONENT:
            raise ParseError("exponent too large")
        if base.is_Number and base not in (0, 1, -1) and _digits(base, exponent) > MAX_RESULT_DIGITS:
            raise ParseError("power too large")
    elif not exponent.free_symbols:
        raise ParseError("non-numeric exponent")
    elif base.is_Number and base not in (0, 1, -1) and not exponent.is_Symbol and exponent.has(sp.Pow):
        raise ParseError("power tower")
    return sp.Pow(base, exponent)


def _digits(base: sp.Expr, exponent: sp.Expr) -> float:
    """A bound on the digits of ``base ** exponent`` (numbers only)."""
    if base in (0, 1, -1):
        return 1.0
    return abs(float(exponent)) * max(1.0, len(str(abs(sp.floor(base)))) + 1.0)


_RING_ONLY = {"num", "op", "id"}


def _ring_only(tokens: list[Token]) -> bool:
    """Only +, -, ×, powers and brackets on numbers: reducing a power modulo n keeps the value's residue."""
    return all(
        t.kind in _RING_ONLY and t.text not in ("/", "!", "%", "mod", "⌊", "⌈", "|") for t in tokens
    ) and not any(t.kind == "id" and t.value is not None and not t.value.is_Integer for t in tokens)


def parse_expr(
    text: str,
    *,
    convert_units: bool = False,
    log_base: int | None = 10,
    functions: Functions | None = None,
    imaginary: bool = False,
    modulus: int | None = None,
) -> Parsed:
    """Parse one expression (no '='). Units after numbers are recorded and optionally converted.
    ``functions``: more one-argument functions to accept, by name (the calculator's);
    ``imaginary``: read a lone ``i`` as the imaginary unit (see :func:`uses_imaginary_unit`);
    ``modulus``: the value only matters modulo this number, so a power too big to compute may be
    reduced (whole numbers with +, -, × and powers only)."""
    tokens = tokenize(text, functions, imaginary)
    if not tokens:
        raise ParseError("empty")
    parser = _Parser(tokens, convert_units, log_base, functions)
    parser.modulus = modulus if modulus and _ring_only(tokens) else None
    expr = parser.expr()
    if parser.pos != len(tokens):
        raise ParseError(f"unexpected {tokens[parser.pos].text!r}")
    if not isinstance(expr, sp.Expr):
        raise ParseError("not an expression")
    return Parsed(expr, parser.units, parser.bare_log)


_IMAGINARY = re.compile(
    r"(?<![A-Za-z])i\s*(?:\^\s*\{?\s*\d+\s*\}?|[²³])\s*=\s*-?\s*[1i](?![\w.])|\\sqrt\s*\{\s*-\s*1\s*\}"
    r"|\b(?:imaginary|complex (?:numbers?|plane|conjugates?|roots?|solutions?))\b"
    r"|(?<![\w^])\d+(?:\.\d+)?\s*[-+−]\s*(?:\d+(?:\.\d+)?\s*(?:\\cdot\s*)?)?i(?![A-Za-z_])"
)
_INDEX = re.compile(r"(?<![A-Za-z\\])i\s*=\s*\d|_\{?i\b|\bfor (?:each|every|all)?\s*i\b")
"""``i`` as an index: ``i = 1``, ``a_i``, ``\\sum_{i=1}``, "for each i"."""


def uses_imaginary_unit(text: str) -> bool:
    """The text works with complex numbers, so its lone ``i`` is the imaginary unit: it says
    ``i^2 = -1`` (or ``i^3 = -i``), "imaginary" or "complex numbers", or writes a number as
    ``a + bi``, and never uses ``i`` as an index (``i = 1``, ``a_i``). Elsewhere ``i`` stays a name."""
    return bool(_IMAGINARY.search(text)) and not _INDEX.search(text)
