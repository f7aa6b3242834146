"""Build answers.jsonl: final answers of every kind against a reference, labelled by a human grader.

Written for this project (no public suite is copied). Each case is (reference, answer, label) with
c = correct, i = incorrect, u = unverifiable; the answer is dressed in one of several ways models
end a reply (boxed, "The final answer is", "Answer:", display math). Cases starting "R:" are whole
responses, for the extraction kinds.

    python tests/mathcheck/data/make_answers.py   # rewrites answers.jsonl next to this file
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("answers.jsonl")

CASES: dict[str, list[tuple[str, str, str]]] = {
    "number": [
        ("0.6", ".6", "c"), ("0.6", ".06", "i"), ("2500", "2 500", "c"), ("2500.50", "2,500.50€", "c"),
        ("2500.5", "€2,500.50", "c"), ("12310", "12,310", "c"), ("12310", "12,301", "i"), ("-7", "-7", "c"),
        ("-7", "7", "i"), ("3.5", "3.50", "c"), ("3.5", "3.05", "i"), ("1000000", "1,000,000", "c"),
        ("1000000", "10^6", "c"), ("42", "42.0", "c"), ("42", "41.9", "i"), ("0.25", "1/4", "c"),
        ("15", "\\$15", "c"), ("15", "\\$15.00", "c"), ("2500", "2.5 \\times 10^3", "c"),
        ("0.0004", "4 \\times 10^{-4}", "c"), ("6000", "6\\,000", "c"), ("6000", "6{,}000", "c"),
        ("6000", "600", "i"), ("0.125", ".125", "c"), ("8", "8.", "c"), ("1.5", "1\\tfrac{1}{2}", "c"),
    ],
    "fraction": [
        ("1/2", "\\frac12", "c"), ("1/2", "\\frac21", "i"), ("3\\pi/4", "\\frac34\\pi", "c"),
        ("3\\pi/4", "\\frac43\\pi", "i"), ("\\frac{1}{2}", "\\cfrac{1}{2}", "c"), ("\\frac{3}{5}", "\\dfrac{3}{5}", "c"),
        ("\\frac{3}{5}", "\\dfrac{5}{3}", "i"), ("0.75", "\\tfrac{3}{4}", "c"), ("\\frac{7}{2}", "3\\frac{1}{2}", "c"),
        ("\\frac{7}{2}", "3.5", "c"), ("\\frac{2}{3}", "0.67", "c"), ("\\frac{2}{3}", "0.6", "i"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", "c"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}", "i"),
        ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}", "c"), ("5/8", "\\frac{5}{8}", "c"), ("5/8", "0.625", "c"),
        ("5/8", "0.58", "i"), ("-\\frac{1}{4}", "\\frac{-1}{4}", "c"), ("-\\frac{1}{4}", "\\frac{1}{4}", "i"),
        ("\\frac{9}{4}", "2.25", "c"), ("\\frac{x}{2}", "\\frac12 x", "c"), ("\\frac{x}{2}", "2x", "i"),
        ("\\frac{5\\pi}{6}", "\\dfrac{5\\pi}{6}", "c"),
    ],
    "latex wrapping": [
        ("7", "R:So the answer is \\( 7 \\).", "c"), ("7", "R:Putting it together:\n\\[ 7 \\]", "c"),
        ("8", "R:So the answer is \\( 7 \\).", "i"), ("5", "5\\text{ meters}", "c"), ("5", "5 \\text{ m}", "c"),
        ("5 m", "5\\,\\text{m}", "c"), ("5 m", "6\\,\\text{m}", "i"), ("12", "\\mathbf{12}", "c"),
        ("12", "\\textbf{12}", "c"), ("9", "\\displaystyle 9", "c"), ("20", "20 \\text{ dollars}", "c"),
        ("20", "\\$20", "c"), ("16", "16 \\mathrm{cm}", "c"), ("16", "16\\ \\text{cm}^2", "c"),
        ("3", "R:Hence $x = 3$.\n\n**Final Answer**\n$$\\boxed{3}$$", "c"), ("4", "R:**Final Answer**\n\n\\[\\boxed{5}\\]", "i"),
        ("10", "R:The answer is $\\boxed{\\text{10}}$.", "c"), ("2", "\\left(2\\right)", "c"),
        ("100", "100\\%", "c"), ("18", "\\text{18 apples}", "c"), ("18", "\\text{81 apples}", "i"),
    ],
    "interval": [
        ("[2,5)", "[2,5)", "c"), ("[2,5)", "[2,5]", "i"), ("(1,4)", "[1,4)", "i"), ("(1,4)", "(1,4)", "c"),
        ("[0,\\infty)", "[0, \\infty)", "c"), ("[0,\\infty)", "(0,\\infty)", "i"), ("(-\\infty, 3]", "(-\\infty,3]", "c"),
        ("(-\\infty,3]", "x \\le 3", "c"), ("(-\\infty,3)", "x \\leq 3", "i"), ("(2,\\infty)", "x > 2", "c"),
        ("(2,\\infty)", "x \\geq 2", "i"), ("[-1,1]", "-1 \\le x \\le 1", "c"), ("[-1,1]", "-1 < x \\le 1", "i"),
        ("(-\\infty,-2)\\cup(2,\\infty)", "(-\\infty,-2) \\cup (2,\\infty)", "c"),
        ("(-\\infty,-2)\\cup(2,\\infty)", "(-\\infty,-2] \\cup [2,\\infty)", "i"), ("[1,3]", "[1, 3]", "c"),
        ("[1,3]", "\\left[1, 3\\right]", "c"), ("(0,1]", "(0,1]", "c"), ("(0,1]", "(0,1)", "i"),
        ("[3,7]", "[3,8]", "i"), ("(\\frac12, 2]", "(0.5, 2]", "c"), ("(\\frac12, 2]", "[0.5, 2]", "i"),
        ("[-3, 3]", "[-3,3]", "c"), ("(-\\infty, \\infty)", "(-\\infty,\\infty)", "c"),
    ],
    "relation": [
        ("y \\leq 3", "y <= 3", "c"), ("y \\leq 3", "y < 3", "i"), ("y \\le 3", "y \\leq 3", "c"),
        ("x > 5", "x > 5", "c"), ("x > 5", "5 < x", "c"), ("x > 5", "x \\geq 5", "i"),
        ("t \\in (1,4]", "t \\in (1,4]", "c"), ("t \\in (1,4]", "1 < t \\le 4", "c"), ("t \\in (1,4]", "1 \\le t \\le 4", "i"),
        ("x \\ge -2", "x \\geq -2", "c"), ("x \\ge -2", "x \\ge 2", "i"), ("2 < x < 7", "x \\in (2,7)", "c"),
        ("2 < x < 7", "(2, 7)", "c"), ("2 < x < 7", "[2, 7]", "i"), ("x < 4", "x < 4", "c"), ("x<4", "4 > x", "c"),
        ("x < 4", "x > 4", "i"), ("y \\geq 0", "y \\geq 0", "c"), ("a \\le 10", "a \\leq 10", "c"),
        ("x >= 1", "x \\geqslant 1", "c"), ("x \\leq -1", "x \\leq 1", "i"), ("n > 3", "n \\gt 3", "c"),
    ],
    "matrix": [
        ("\\begin{pmatrix}2&1\\\\1&2\\end{pmatrix}", "\\begin{pmatrix}2&1\\\\1&2\\end{pmatrix}", "c"),
        ("\\begin{pmatrix}2&1\\\\1&2\\end{pmatrix}", "\\begin{bmatrix}2 & 1 \\\\ 1 & 2\\end{bmatrix}", "c"),
        ("\\begin{pmatrix}2&1\\\\1&2\\end{pmatrix}", "\\begin{pmatrix}2&1\\\\1&3\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "c"),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "\\begin{bmatrix}1&0\\\\0&1\\end{bmatrix}", "c"),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}\\frac12&0\\\\0&2\\end{pmatrix}", "\\begin{pmatrix}0.5&0\\\\0&2\\end{pmatrix}", "c"),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2&0\\\\3&4&0\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}3\\\\-1\\\\2\\end{pmatrix}", "\\begin{pmatrix} 3 \\\\ -1 \\\\ 2 \\end{pmatrix}", "c"),
        ("\\begin{pmatrix}3\\\\-1\\\\2\\end{pmatrix}", "\\begin{pmatrix}3\\\\1\\\\2\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}-2&4\\\\1&0\\end{pmatrix}", "\\begin{pmatrix}-2 & 4\\\\ 1 & 0\\end{pmatrix}", "c"),
        ("\\begin{pmatrix}-2&4\\\\1&0\\end{pmatrix}", "\\begin{pmatrix}2 & -4\\\\ -1 & 0\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}\\sqrt2&1\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}\\sqrt{2}&1\\\\0&1\\end{pmatrix}", "c"),
        ("\\begin{bmatrix}5&6\\end{bmatrix}", "\\begin{pmatrix}5&6\\end{pmatrix}", "c"),
        ("\\begin{bmatrix}5&6\\end{bmatrix}", "\\begin{pmatrix}6&5\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix}", "\\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix}", "c"),
        ("\\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix}", "\\begin{pmatrix}0&1\\\\-1&0\\end{pmatrix}", "i"),
        ("\\begin{pmatrix}4\\\\4\\end{pmatrix}", "\\begin{bmatrix}4\\\\4\\end{bmatrix}", "c"),
        ("\\begin{pmatrix}2x&1\\\\0&x\\end{pmatrix}", "\\begin{pmatrix}x+x&1\\\\0&x\\end{pmatrix}", "c"),
    ],
    "set vs tuple": [
        ("\\{1,2,3\\}", "\\{3,1,2\\}", "c"), ("\\{1,2,3\\}", "\\{1,2\\}", "i"), ("\\{-1, 4\\}", "x = 4 \\text{ or } x = -1", "c"),
        ("\\{-1, 4\\}", "x = 4", "i"), ("(3,1)", "(3,1)", "c"), ("(3,1)", "(1,3)", "i"), ("(1,2,3)", "\\{1,2,3\\}", "i"),
        ("\\{1,2,3\\}", "(1, 2, 3)", "i"), ("(5,1)", "(a,b)=(5,1)", "c"), ("(5,1)", "(a,b)=(1,5)", "i"),
        ("(5,1)", "a=5, b=1", "c"), ("(2,-3)", "x=2, y=-3", "c"), ("(2,-3)", "x=-3, y=2", "i"),
        ("[1, 4, 9]", "[1,4,9]", "c"), ("[1, 4, 9]", "[9, 4, 1]", "i"), ("-2, 3", "3, -2", "c"), ("-2, 3", "3", "i"),
        ("\\{2, 5, 7\\}", "\\{7, 5, 2\\}", "c"), ("\\{2, 5, 7\\}", "\\{2, 5, 8\\}", "i"), ("(0, 0, 1)", "(0,0,1)", "c"),
        ("(0, 0, 1)", "(1,0,0)", "i"), ("x=1, y=2", "(1, 2)", "c"), ("x=1, y=2", "y=2, x=1", "c"),
        ("\\{\\frac12, 3\\}", "\\{3, 0.5\\}", "c"),
    ],
    "equation": [
        ("x-2y-2=0", "y=\\frac12x-1", "c"), ("x-2y-2=0", "y=2x-1", "i"), ("y=2x+3", "2x - y + 3 = 0", "c"),
        ("y=2x+3", "y = 3x+2", "i"), ("x^2+y^2=25", "x^2 + y^2 = 25", "c"), ("x^2+y^2=25", "y^2 = 25 - x^2", "c"),
        ("x^2+y^2=25", "x^2+y^2=5", "i"), ("y = -x + 4", "x + y = 4", "c"), ("y=-x+4", "x - y = 4", "i"),
        ("2x+3y=6", "y = 2 - \\frac{2}{3}x", "c"), ("3x+y=0", "6x+2y=0", "c"), ("3x+y=0", "3x-y=0", "i"),
        ("5", "x = 5", "c"), ("5", "x=6", "i"), ("y = \\frac{1}{2}x + 2", "y=0.5x+2", "c"),
        ("y = \\frac{1}{2}x + 2", "y=0.5x-2", "i"), ("(x-1)^2+(y+2)^2=9", "x^2-2x+y^2+4y-4=0", "c"),
        ("(x-1)^2+(y+2)^2=9", "x^2-2x+y^2+4y+4=0", "i"), ("y=x^2-4", "y = (x-2)(x+2)", "c"),
        ("-4", "k = -4", "c"), ("-4", "k = 4", "i"),
    ],
    "plus-minus": [
        ("2 \\pm \\sqrt{3}", "2 \\pm \\sqrt3", "c"), ("\\pm 3", "x = \\pm 3", "c"), ("\\pm 3", "3, -3", "c"),
        ("\\pm 3", "3", "i"), ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", "c"), ("1 \\pm \\sqrt{2}", "1 \\pm \\sqrt{3}", "i"),
        ("x = \\pm 4", "x = 4 \\text{ or } x = -4", "c"), ("\\{-5,5\\}", "\\pm 5", "c"), ("\\{-5,5\\}", "\\pm 6", "i"),
        ("\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1 \\pm \\sqrt5}{2}", "c"),
        ("\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{1 \\pm \\sqrt5}{2}", "i"), ("-2 \\pm i", "-2+i, -2-i", "c"),
        ("3 \\pm 2", "1, 5", "c"), ("3 \\pm 2", "1", "i"), ("x=\\pm\\sqrt{7}", "\\pm\\sqrt{7}", "c"),
        ("\\pm 2", "±2", "c"), ("\\pm 2", "+/- 2", "c"), ("\\pm 2", "±3", "i"),
    ],
    "degrees": [
        ("30^\\circ", "30", "c"), ("30", "30^\\circ", "c"), ("30^\\circ", "30°", "c"), ("30^\\circ", "\\frac{\\pi}{6}", "c"),
        ("30^\\circ", "60^\\circ", "i"), ("45", "45^{\\circ}", "c"), ("90^\\circ", "90 degrees", "c"),
        ("120^\\circ", "120^\\circ", "c"), ("120^\\circ", "\\frac{2\\pi}{3}", "c"), ("\\frac{\\pi}{3}", "60^\\circ", "c"),
        ("\\frac{\\pi}{3}", "30^\\circ", "i"), ("72^\\circ", "72^{\\circ}", "c"), ("72^\\circ", "27^\\circ", "i"),
        ("135", "135°", "c"), ("135", "145°", "i"), ("180^\\circ", "\\pi", "c"), ("60", "60 ^\\circ", "c"),
        ("15^\\circ", "15 \\text{ degrees}", "c"), ("15^\\circ", "15\\text{°}", "c"),
    ],
    "base": [
        ("11", "1011_2", "c"), ("11", "1011_{2}", "c"), ("11", "1101_2", "i"), ("255", "FF_{16}", "c"),
        ("1011_2", "11", "c"), ("1011_2", "1011_2", "c"), ("7", "21_3", "c"), ("7", "12_3", "i"), ("4", "100_2", "c"),
        ("100_2", "4", "c"), ("100_2", "3", "i"), ("26", "32_8", "c"), ("26", "32_{8}", "c"), ("26", "23_8", "i"),
        ("10", "A_{16}", "c"), ("31", "11111_2", "c"), ("31", "11110_2", "i"),
    ],
    "text": [
        ("B", "B", "c"), ("B", "(B)", "c"), ("B", "\\text{(B)}", "c"), ("B", "C", "i"), ("B", "B) 42", "c"),
        ("Yes", "yes", "c"), ("yes", "R:She has enough money.\nFinal answer: Yes, she can buy it.", "c"),
        ("no", "No", "c"), ("no", "yes", "i"), ("Maria", "Maria", "c"), ("Maria", "\\text{Maria}", "c"),
        ("Maria", "Joe", "i"), ("Tuesday", "tuesday", "c"), ("Tuesday", "Thursday", "i"), ("even", "\\text{even}", "c"),
        ("odd", "even", "i"), ("D", "\\textbf{(D)}", "c"), ("A", "(A) 12", "c"), ("A", "(C) 12", "i"),
        ("\\text{yes}", "\\text{Yes}", "c"), ("true", "True", "c"), ("true", "false", "i"),
    ],
    "units and time": [
        ("2.4", "2 hours and 24 minutes", "c"), ("144 min", "2.4 h", "c"), ("2.4 h", "2 h 24 min", "c"),
        ("5 km", "5000 m", "c"), ("5 km", "500 m", "i"), ("60", "60 km/h", "c"), ("25%", "0.25", "c"),
        ("25%", "25", "c"), ("25%", "2.5\\%", "i"), ("90 minutes", "1.5 hours", "c"), ("1.5 h", "1 hour 30 minutes", "c"),
        ("1.5 h", "1 hour 50 minutes", "i"), ("12.50", "12.5 dollars", "c"), ("3 kg", "3000 g", "c"), ("3 kg", "300 g", "i"),
        ("2 L", "2000 mL", "c"), ("45", "45 minutes", "c"), ("45", "45 \\text{ minutes}", "c"), ("7.5", "7.5 km", "c"),
        ("7.5", "7.6 km", "i"), ("40%", "40 \\%", "c"), ("0.4", "40\\%", "c"),
    ],
    "expression": [
        ("x^2+5x+6", "(x+2)(x+3)", "c"), ("x^2+5x+6", "(x+1)(x+6)", "i"), ("2\\sqrt{2}", "\\sqrt{8}", "c"),
        ("2\\sqrt{2}", "\\sqrt{6}", "i"), ("\\frac{x^3}{3}+C", "\\frac13 x^3 + C", "c"), ("3x^2+4x-5", "3x^2 + 4x - 5", "c"),
        ("3x^2+4x-5", "3x^2 + 4x + 5", "i"), ("e^{2x}", "e^{2x}", "c"), ("\\log_2 8", "3", "c"), ("4\\pi", "4 \\pi", "c"),
        ("4\\pi", "2\\pi", "i"), ("\\sqrt{12}", "2\\sqrt{3}", "c"), ("\\sqrt{12}", "3\\sqrt{2}", "i"),
        ("2x(x-1)", "2x^2-2x", "c"), ("\\frac{1}{x+1}", "(x+1)^{-1}", "c"), ("\\pi r^2", "r^2\\pi", "c"),
        ("\\pi r^2", "2\\pi r", "i"), ("6", "3!", "c"), ("10", "\\binom{5}{2}", "c"), ("10", "\\binom{5}{3}", "c"),
        ("5+3i", "3i+5", "c"), ("5+3i", "5-3i", "i"),
    ],
}

LONG_WORK = "".join(f"Step {k}: we carry {k} forward and note {k} + 1 = {k + 1}.\n" for k in range(1, 800))
EXTRACTION: list[tuple[str, str, str]] = [
    ("57", "R:The sum is $\\boxed{57}$.\nChecking again, we get $\\boxed{57}$.\nTherefore $\\boxed{57}$.", "c"),
    ("58", "R:The sum is $\\boxed{57}$.\nChecking again, we get $\\boxed{57}$.\nTherefore $\\boxed{57}$.", "i"),
    ("12310", "R:Part one: $\\boxed{120}$ per day.\nPart two: $\\boxed{200}$ days.\nAdding the rest: $24,000 - 11,690$.\n"
     "The final answer is $12,310$", "c"),
    ("200", "R:Part one: $\\boxed{120}$ per day.\nPart two: $\\boxed{200}$ days.\nAdding the rest: $24,000 - 11,690$.\n"
     "The final answer is $12,310$", "i"),
    ("42", "R:" + LONG_WORK + "Final answer: 42", "c"),
    ("41", "R:" + LONG_WORK + "Final answer: 42", "i"),
    ("42", "R:" + LONG_WORK + "So the answer is $\\boxed{42}$.", "c"),
    ("5", "R:Let's think. We need the total first and then subtract what was eaten.", "u"),
    ("5", "R:I am not sure how to solve this problem.", "u"),
    ("12", "R:First, 3 × 4 = 12. Then we need to take away the ones that", "u"),
    ("5", "R:We found $\\boxed{3}$ for the first part.\nFinal answer: 5", "c"),
    ("3", "R:We found $\\boxed{3}$ for the first part.\nFinal answer: 5", "i"),
    ("2, 3", "R:The roots are $\\boxed{2}$ and $\\boxed{3}$.", "c"),
    ("7", "R:There are 3 red and 4 blue, so 3 + 4 = 7 marbles.\nThe answer is 7.", "c"),
    ("7", "R:There are 3 red and 4 blue.\nSo she has 7 marbles, and 2 of them are big.\n**Answer:** 7 marbles", "c"),
    ("9", "R:There are 3 red and 4 blue, so 3 + 4 = 7 marbles.\nThe answer is 7.", "i"),
    ("B", "R:Option B gives 12, which matches.\nThe answer is \\boxed{B}.", "c"),
    ("24", "R:The area is $6 \\times 4 = 24$.\n\n**Final Answer**\n\\[ \\boxed{24} \\]\n\nI hope this helps!", "c"),
    ("24", "R:Final answer: 24\n\nLet me double check: 6 × 4 = 24. Yes.", "c"),
    ("10", "R:Hmm, this depends on what we count; there is not enough information to give a number.", "u"),
]

WRAPS = [
    "We work through it.\n\nThe final answer is $\\boxed{{{a}}}$.",
    "Putting it together, the answer is ${a}$.",
    "**Final Answer:** ${a}$",
    "So we get\n\\[ \\boxed{{{a}}} \\]",
]
PLAIN_WRAPS = ["Final answer: {a}", "The answer is {a}.", "**Answer:** {a}", "So the answer is \\boxed{{{a}}}."]
LABELS = {"c": "correct", "i": "incorrect", "u": "unverifiable"}
PROMPTS = {("2.4", "2 hours and 24 minutes"): "How many hours does the trip take?"}


def _latexy(text: str) -> bool:
    return "\\" in text or "{" in text or "^" in text or "_" in text


def build() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for kind, cases in [*CASES.items(), ("extraction", EXTRACTION)]:
        for n, (gold, answer, label) in enumerate(cases):
            if answer.startswith("R:"):
                response = answer[2:]
            else:
                wraps = WRAPS if _latexy(answer) else PLAIN_WRAPS
                response = wraps[n % len(wraps)].format(a=answer)
            rows.append({
                "id": f"{kind.replace(' ', '-')}-{n}", "prompt": PROMPTS.get((gold, answer)), "gold": gold,
                "response": response, "label": {"final": LABELS[label], "wrong_steps": []}, "tags": ["answer", kind],
            })  # fmt: skip
    return rows


if __name__ == "__main__":
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} cases -> {OUT}")
