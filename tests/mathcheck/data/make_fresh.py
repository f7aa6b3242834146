"""Writes answers_fresh.jsonl: final answers phrased the ways models and people end them.

Written before looking at the checker's extraction rules, as a held-out check on them; about a
third are wrong answers so that a checker saying "correct" to everything fails. The last ten are
the lead's spot cases. Run: python tests/mathcheck/data/make_fresh.py
"""

import json
from pathlib import Path

C, W, U = "correct", "incorrect", "unverifiable"

# (kind, gold, response, final verdict)
CASES = [
    ("interval", "(-2, 5]", "Thus, the solution is \\( x \\in (-2, 5] \\).", C),
    ("interval", "(-2,5]", "So x lies in the interval $(-2, 5)$.", W),
    ("interval", "[1, \\infty)", "Hence the domain is $[1,\\infty)$.", C),
    ("interval", "[1,\\infty)", "The domain is all $x > 1$.", W),
    ("interval", "(-\\infty, 3)", "Therefore, $x < 3$.", C),
    ("interval", "[2, 5)", "So $2 < x \\le 5$.", W),
    ("relation", "x \\geq 2", "So we need $x \\ge 2$.", C),
    ("relation", "y \\le 4", "This gives us $4 \\geq y$.", C),
    ("relation", "x > -1", "We conclude $x \\geq -1$.", W),
    ("relation", "x<5", "Solving, x < 5.", C),
    ("set", "\\{2, 4, 6\\}", "The solutions are $\\{6, 2, 4\\}$.", C),
    ("set", "\\{-3, 3\\}", "The roots are $x = 3$ and $x = -3$.", C),
    ("set", "\\{1, 2\\}", "The set is $\\{1, 2, 3\\}$.", W),
    ("set", "\\{0,5\\}", "So $x = 0$ or $x = 5$.", C),
    ("set", "\\{1,2,3\\}", "This is $(1, 2, 3)$.", W),
    ("tuple", "(3, -1)", "The intersection point is $(3, -1)$.", C),
    ("tuple", "(3,-1)", "The point is $(-1, 3)$.", W),
    ("tuple", "(2, 5)", "Therefore $(a, b) = (2, 5)$.", C),
    ("tuple", "(1,2)", "We get $x = 1$ and $y = 2$, so the solution is $(x, y) = (1, 2)$.", C),
    (
        "matrix",
        "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}",
        "The product is\n$$\\begin{pmatrix}2 & 0\\\\ 0 & 2\\end{pmatrix}$$",
        C,
    ),
    (
        "matrix",
        "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}",
        "So $A^2 = \\begin{bmatrix} 2 & 0 \\\\ 0 & 3 \\end{bmatrix}$.",
        W,
    ),
    (
        "matrix",
        "\\begin{pmatrix}1\\\\-2\\end{pmatrix}",
        "The vector is $\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}$.",
        C,
    ),
    ("equation", "y = 2x + 1", "The line is $y = 1 + 2x$.", C),
    ("equation", "y=2x+1", "Its equation: $2x - y + 1 = 0$.", C),
    ("equation", "y = 2x+1", "The line is $y = 2x - 1$.", W),
    ("equation", "x^2 + y^2 = 25", "The circle's equation is $x^2+y^2=25$.", C),
    ("plus-minus", "\\pm 3", "So $x = \\pm 3$.", C),
    ("plus-minus", "\\pm 3", "Thus x = 3.", W),
    ("plus-minus", "1 \\pm \\sqrt{2}", "The roots are $x = 1 \\pm \\sqrt 2$.", C),
    ("degrees", "60^\\circ", "The angle measures $60°$.", C),
    ("degrees", "60", "So angle ABC is 60 degrees.", C),
    ("degrees", "45^\\circ", "Each angle is $54^\\circ$.", W),
    ("degrees", "\\frac{\\pi}{3}", "The angle is $\\frac{\\pi}{3}$ radians.", C),
    ("units", "12", "She walks 12 km in total.", C),
    ("units", "3.5", "It takes him 3.5 hours.", C),
    ("units", "90", "Its average speed is 90 km/h.", C),
    ("units", "150", "So the tank holds 105 liters.", W),
    ("units", "2.5", "It weighs 2.5 kg.", C),
    ("units", "\\frac{7}{2}", "The rope is 3.5 m long.", C),
    ("units", "\\frac{7}{2}", "That gives x = 2/7 m.", W),
    ("choice", "C", "Answer: C) 42", C),
    ("choice", "C", "So the answer must be option C.", C),
    ("choice", "D", "I'd go with (A).", W),
    ("choice", "A", "The correct choice is **A**.", C),
    ("choice", "B", "Option B is correct.", C),
    ("choice", "D", "Correct answer: (C) 12 cm", W),
    ("choice", "B", "Comparing the four, the best fit is B) 3/4.", C),
    ("yes/no", "yes", "Yes, 91 is divisible by 7.", C),
    ("yes/no", "no", "No. 51 = 3 × 17, so it is not prime.", C),
    ("yes/no", "yes", "No, it is not possible.", W),
    ("yes/no", "no", "So the answer is yes.", W),
    ("name", "Alice", "Alice ran the farthest.", C),
    ("name", "Tuesday", "They meet again on a Tuesday.", C),
    ("name", "Bob", "Therefore, Carol has the most marbles.", W),
    ("number format", "2500", "The total is 2,500.", C),
    ("number format", "2500.50", "She pays €2,500.50 in total.", C),
    ("number format", "1250", "That comes to 1 250 €.", C),
    ("number format", "15\\%", "The discount is 15%.", C),
    ("number format", "15", "So the price went up by 15 %.", C),
    ("number format", "25", "He saves 20% of his pay.", W),
    ("number format", "1000000", "About 1,000,000 people live there.", C),
    ("number format", "3200", "The total cost is $3,020.", W),
    ("leading dot", "0.6", "The probability is .6", C),
    ("leading dot", "0.6", "So P = .06.", W),
    ("leading dot", "0.75", "which gives 3/4.", C),
    ("fraction", "\\frac{3}{4}", "The probability is $\\dfrac{3}{4}$.", C),
    ("fraction", "\\frac34", "That's 0.75 of the pie.", C),
    ("fraction", "\\frac{2}{3}", "So the ratio equals 3/2.", W),
    ("fraction", "\\frac{5}{12}", "Simplifying, we get $\\frac{10}{24}$.", C),
    ("fraction", "\\frac{1}{3}", "Thus the probability is 1/3 ≈ 0.333.", C),
    ("expression", "2\\sqrt{3}", "The side length is $\\sqrt{12}$.", C),
    ("expression", "3x^2 - 2", "So $f'(x) = 3x^2 - 2$.", C),
    ("expression", "x^2 - 1", "This simplifies to (x-1)(x+1).", C),
    ("expression", "2\\pi", "The period is $\\pi$.", W),
    ("plain ending", "42", "**Answer:** 42", C),
    ("plain ending", "42", "Final answer: 24", W),
    ("plain ending", "17", "After checking each case, there are 17 ways.", C),
    ("plain ending", "17", "So the total number of ways is 17.\n\nI hope this helps!", C),
    ("plain ending", "8", "The final answer is: $\\boxed{8}$", C),
    ("plain ending", "8", "Adding them up.\n\n### Final Answer\n\\[\n\\boxed{6}\n\\]", W),
    (
        "plain ending",
        "64",
        "Step 1: 4^3 = 64.\nSo she has 64 cubes.\n\nLet me know if you have other questions!",
        C,
    ),
    ("plain ending", "5", "Thus, there are $\\boxed{5}$ solutions.", C),
    ("plain ending", "-4", "Hence, $x = -4$.", C),
    ("plain ending", "-4", "Hence, $x = 4$.", W),
    ("plain ending", "10", "Therefore, he needs 12 more boxes, since 22 - 10 = 12.", W),
    ("plain ending", "7", "It equals 7.", C),
    ("plain ending", "9", "x = 3, and therefore x^2 = 9.", C),
    ("plain ending", "36", "The area is 36 square units.", C),
    ("plain ending", "36", "The area is 6 × 6 = 36 cm².", C),
    ("plain ending", "20", "Each friend gets 5 cookies.", W),
    ("no answer", "12", "I'm not sure how to solve this without more information.", U),
    ("no answer", "B", "Let me think about each option carefully.", U),
]

# Round two: written after the extraction fixes that round one led to, run once before any further
# change (its first-run score is the honest one for those fixes).
ROUND_TWO = [
    ("interval", "(0, 1)", "Putting it together: $0 < x < 1$.", C),
    ("interval", "[-1, 1]", "The range of f is \\([-1, 1)\\).", W),
    ("relation", "x \\le -2", "which means x ≤ -2.", C),
    ("relation", "t > 0", "It holds exactly when $t$ is positive, i.e. $t > 0$.", C),
    ("relation", "x \\geq 3", "Hence x must be greater than 3.", W),
    ("set", "\\{-2, 2\\}", "Solutions: $x=-2$, $x=2$.", C),
    ("set", "\\{1, 4\\}", "We find $x = 1$ or $x = 5$.", W),
    ("tuple", "(4, -3)", "The center of the circle is at \\((4,-3)\\).", C),
    ("tuple", "(0, 2)", "So the y-intercept is the point (2, 0).", W),
    (
        "matrix",
        "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}",
        "This is just the identity, $\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$.",
        C,
    ),
    ("equation", "y = -x + 4", "So the tangent line is $y = 4 - x$.", C),
    ("equation", "y = 3x", "The required line: y = x/3.", W),
    ("plus-minus", "\\pm 5", "Therefore $x = 5$ or $x = -5$.", C),
    ("degrees", "30^\\circ", "Angle C = 30°.", C),
    ("degrees", "120", "The exterior angle is 60°.", W),
    ("units", "45", "The cyclist rides at 45 km per hour.", C),
    ("units", "6", "He needs 6 more cans of paint.", C),
    ("units", "8", "She will be 18 years old then.", W),
    ("choice", "E", "Of the five, only (E) works.", C),
    ("choice", "A", "Choice (B) gives the right total.", W),
    ("choice", "C", "I would pick C.", C),
    ("yes/no", "no", "That is not possible, so no.", C),
    ("yes/no", "yes", "Yes — both conditions are met.", C),
    ("name", "Maria", "So Maria is older.", C),
    ("name", "Wednesday", "The package arrives on Thursday.", W),
    ("number format", "12500", "The car costs $12,500.", C),
    ("leading dot", "0.4", "The share is .4 of the total.", C),
    ("number format", "1.5", "It is about 1.50 litres.", C),
    ("number format", "7.25", "That's €7.52 per person.", W),
    ("fraction", "\\frac{1}{6}", "The probability comes out to 1/6.", C),
    ("fraction", "\\frac{3}{8}", "which is $\\tfrac{3}{8}$.", C),
    ("fraction", "\\frac{4}{9}", "So the fraction is 9/4.", W),
    ("expression", "\\sqrt{2}/2", "Its value is $\\frac{\\sqrt{2}}{2}$.", C),
    ("expression", "2x+3", "The derivative is $2x - 3$.", W),
    ("plain ending", "24", "Altogether, the class collected 24 cans!", C),
    ("plain ending", "24", "She ends up with 42 stickers.", W),
    ("plain ending", "100", "Answer — 100", C),
    ("plain ending", "13", "In all there are 13 students in the club.\n\nHope that helps.", C),
    ("plain ending", "9", "Result: 9", C),
    ("no answer", "6", "Could you clarify what the question is asking?", U),
    ("plain ending", "15", "The remaining amount = 15", C),
    ("plain ending", "50", "So, she ran 5 laps of 10 m, i.e., 50 m in total.", C),
]

# The lead's ten spot cases (gold "" = no reference; their final verdict rests on the claims).
LEAD_SPOT = [
    ("[3,7)", "So the solution set is $x \\in [3, 7)$.", C, []),
    ("[3,7)", "The answer is $(3,7)$.", W, []),
    ("\\frac{5}{8}", "Therefore the answer is $\\boxed{0.625}$.", C, []),
    ("12,310", "First $\\boxed{12}$ then $\\boxed{310}$. The final answer is $12,310$", C, []),
    ("x \\geq 2", "We get $2 \\le x$.", C, []),
    (
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        "$\\boxed{\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}}$",
        C,
        [],
    ),
    (
        "",
        "Tom has 3 bags with 4 apples each, so 3 x 4 = 13 apples. He eats .5 of them... The answer is 13.",
        U,
        ["3 x 4 = 13"],
    ),
    (
        "",
        "Pens cost 7 pens * $3 = $21 and 2 books * $8 = $16, a total of 21 + 16 = 38 dollars.",
        U,
        ["21 + 16 = 38"],
    ),
    ("B", "The correct option is (B).", C, []),
    ("\\{1,2,3\\}", "The set is $\\{3,1,2\\}$.", C, []),
]

LEAD_PROMPTS = ["Solve.", "Solve."] + ["Find it."] * 4 + ["How many?", "Cost?", "Name?", "Find it."]


def main() -> None:
    out = Path(__file__).with_name("answers_fresh.jsonl")
    rows = []
    for i, (kind, gold, response, final) in enumerate(CASES + ROUND_TWO):
        rows.append(
            {
                "id": f"fresh-{kind.replace(' ', '-').replace('/', '-')}-{i}",
                "prompt": None,
                "gold": gold,
                "response": response,
                "label": {"final": final, "wrong_steps": []},
                "tags": ["answer", "fresh answers", kind],
            }
        )
    for i, (gold, response, final, wrong) in enumerate(LEAD_SPOT):
        rows.append(
            {
                "id": f"fresh-lead-spot-{i}",
                "prompt": LEAD_PROMPTS[i],
                "gold": gold,
                "response": response,
                "label": {"final": final, "wrong_steps": wrong},
                "tags": ["answer", "fresh answers", "lead spot"],
            }
        )
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


if __name__ == "__main__":
    main()
