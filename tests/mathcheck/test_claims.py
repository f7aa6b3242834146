"""Claim finding and checking: every slip flagged with its right value, no false alarms."""

from __future__ import annotations

from mathcheck.claims import check_claim, find_claims


def _checked(text: str) -> list[tuple[str, str, str | None]]:
    out = []
    for cand in find_claims(text):
        claim = check_claim(cand)
        if claim is not None:
            out.append((claim.text, claim.verdict, claim.expected))
    return out


def test_plain_text_claims_with_units_and_labels() -> None:
    text = (
        "First, 3 × 12 = 36 apples. She gives away 14, so 36 - 14 = 24.\n"
        "At 60 km/h for 2.4 h she goes 60 × 2.4 = 144 km."
    )
    assert _checked(text) == [
        ("3 × 12 = 36 apples", "ok", None),
        ("36 - 14 = 24", "wrong", "22"),
        ("60 × 2.4 = 144 km", "ok", None),
    ]


def test_first_false_link_of_a_chain_gets_the_right_value() -> None:
    (claim,) = _checked("Earnings: 35 × 18 = 35 × 20 - 35 × 2 = 700 - 60 = 640.")
    assert claim == ("35 × 18 = 35 × 20 - 35 × 2 = 700 - 60 = 640", "wrong", "630")


def test_latex_claims() -> None:
    text = r"$$\frac{3}{4} \times 48 = \frac{144}{4} = 34$$ and $\sqrt{18} = 2\sqrt{3}$ but $2^{10} = 1024$."
    assert _checked(text) == [
        (r"\frac{3}{4} \times 48 = \frac{144}{4} = 34", "wrong", "36"),
        (r"\sqrt{18} = 2\sqrt{3}", "wrong", "4.2426"),
        ("2^{10} = 1024", "ok", None),
    ]


def test_align_environment_is_one_chain() -> None:
    text = "\\begin{align*}\n(3+4)^2 - 2 \\times 5 &= 7^2 - 10 \\\\\n&= 42 - 10 \\\\\n&= 32\n\\end{align*}"
    ((_, verdict, expected),) = _checked(text)
    assert (verdict, expected) == ("wrong", "39")


def test_unicode_operators() -> None:
    assert _checked("144 ÷ 12 = 12\n3² = 6\n12 − 6 = 6") == [
        ("144 ÷ 12 = 12", "ok", None),
        ("3² = 6", "wrong", "9"),
        ("12 − 6 = 6", "ok", None),
    ]


def test_rounded_results_are_accepted_at_their_precision() -> None:
    assert [v for _, v, _ in _checked("1/3 ≈ 0.333 and 10 / 3 = 3.33, but 10 / 3 = 3.43.")] == [
        "ok",
        "ok",
        "wrong",
    ]


def test_unit_conversions_are_checked_and_definitions_skipped() -> None:
    assert _checked("We know 1 h = 60 min. Then 2.4 h = 124 min and 50 min = 5/6 h.") == [
        ("1 h = 60 min", "unchecked", None),
        ("2.4 h = 124 min", "wrong", "144 min"),
        ("50 min = 5/6 h", "ok", None),
    ]


def test_no_false_alarms_on_hypotheticals_equations_and_ambiguous_text() -> None:
    text = (
        "If each box had held 5 eggs, 7 × 5 = 30 would have been the total.\n"
        "We solve 2x + 3 = 7. 3 bags of 4 apples = 12 apples. Half of 10 + 4 = 9.\n"
        "Speed = 10 ÷ 5/6 = 12 km/h. log(100) = 2 and (x+1)^2 = x^2 + 2x + 1."
    )
    verdicts = _checked(text)
    assert all(v != "wrong" for _, v, _ in verdicts), verdicts
    assert ("(x+1)^2 = x^2 + 2x + 1", "ok", None) in verdicts


def test_unparseable_claims_are_unchecked() -> None:
    verdicts = _checked("Then 2^{2^{2^{2^{2}}}} = 2^{65536} is even.")
    assert [v for _, v, _ in verdicts] == ["unchecked"]


def test_the_imaginary_unit_is_read_where_the_response_works_with_complex_numbers() -> None:
    # recorded in solutions_fresh2 (fresh2-complex-slip): i^2 = -1, so -8i^2 is +8
    slip = r"Since $i^2 = -1$, we have $-8i^2 = -8$, so the product is $$3 + 10i - 8 = -5 + 10i.$$"
    assert _checked(slip) == [
        ("i^2 = -1", "ok", None),
        ("-8i^2 = -8", "wrong", "8"),
        ("3 + 10i - 8 = -5 + 10i", "ok", None),
    ]
    assert _checked("Multiply out: $(2+3i)(2-3i) = 4 + 6i$ and $(1 + i)^2 = 2$.") == [
        ("(2+3i)(2-3i) = 4 + 6i", "wrong", "13"),
        ("(1 + i)^2 = 2", "wrong", "2i"),
    ]
    assert _checked("So $(3 - 2i)(1 + 4i) = 11 + 12i$.") == [
        ("(3 - 2i)(1 + 4i) = 11 + 12i", "wrong", "11 + 10i")
    ]


def test_an_index_named_i_stays_a_name() -> None:
    # no complex numbers in sight, and i counts terms: 2i + 1 = 7 is an equation in i, not a slip
    assert _checked(r"For $i = 3$ the term is $2i + 1 = 7$, and $a_i = 2i + 1$.") == []


def test_a_chain_is_checked_link_by_link_past_a_link_it_cannot_read() -> None:
    # recorded in solutions_fresh2 (fresh2-committee-slip)
    (claim,) = [
        check_claim(c)
        for c in find_claims(
            r"$$\binom{8}{3} = \frac{8 \cdot 7 \cdot 6}{3 \cdot 2 \cdot 1} = \frac{336}{6} = 54$$"
        )
    ]
    assert claim is not None and (claim.verdict, claim.expected) == ("wrong", "56")
    assert claim.step == r"\frac{336}{6} = 54"
    # \Gamma is not read: the links after it still are
    (slip,) = [check_claim(c) for c in find_claims(r"$\Gamma(5) = 4! = 25$")]
    assert slip is not None and (slip.verdict, slip.expected, slip.step) == ("wrong", "24", "4! = 25")
    (fine,) = [check_claim(c) for c in find_claims(r"$\Gamma(5) = 4! = 24$")]
    assert fine is not None and fine.verdict == "unchecked"  # never a ✓ for a link not read


def test_congruences_hold_modulo_their_modulus() -> None:
    # recorded in solutions_fresh2 (fresh2-mod7, fresh2-lastdigits), then with a slip each
    assert _checked(r"$2^{10} = (2^3)^3 \cdot 2 \equiv 1^3 \cdot 2 = 2 \pmod 7$") == [
        (r"2^{10} = (2^3)^3 \cdot 2 \equiv 1^3 \cdot 2 = 2 \pmod 7", "ok", None)
    ]
    assert _checked(r"$7^4 = 2401 \equiv 11 \pmod{100}$") == [
        (r"7^4 = 2401 \equiv 11 \pmod{100}", "wrong", "1")
    ]
    assert _checked("Then 2^10 = 1024 = 2 (mod 7), not 1024 = 3 (mod 7).")[0] == (
        "2^10 = 1024 = 2",
        "ok",
        None,
    )
    assert _checked(r"$a \equiv 3 \pmod 5$ and $17 \equiv 2 \mod 5$") == [(r"17 \equiv 2 \mod 5", "ok", None)]


def test_an_inequality_in_a_chain_leaves_its_equal_links_checked() -> None:
    # recorded in solutions_fresh2 (fresh2-amgm), with a slip in its last link
    text = r"$x \cdot 2y \le \left(\frac{x + 2y}{2}\right)^2 = 6^2 = 35$"
    ((_, verdict, expected),) = _checked(text)
    assert (verdict, expected) == ("wrong", "36")
    assert _checked(text.replace("35", "36"))[0][1] == "ok"


def test_a_slip_carried_into_a_later_step_is_marked_once() -> None:
    # recorded in solutions (sol-remainder-1-slip): 3^2 ≡ 3 follows from the slip 3^2 = 10
    text = r"First, $3^2 = 10 = 1 \cdot 7 + 3$, so $3^2 \equiv 3 \pmod{7}$. Also $3^3 = 26$."
    claims = []
    for cand in find_claims(text):
        claim = check_claim(cand, claims)
        assert claim is not None
        claims.append(claim)
    assert [(c.verdict, c.expected) for c in claims] == [("wrong", "9"), ("unchecked", None), ("wrong", "27")]
    assert claims[1].note == "follows from the wrong step 3^2 = 10"


def test_a_power_too_big_to_compute_is_checked_by_its_residue() -> None:
    right = r"So $2^{2026} = (2^3)^{675} \cdot 2 \equiv 2 \pmod 7$."
    assert _checked(right) == [(r"2^{2026} = (2^3)^{675} \cdot 2 \equiv 2 \pmod 7", "ok", None)]
    assert _checked(right.replace("\\equiv 2", "\\equiv 4"))[0][1:] == ("wrong", "2")
    # a division after the power: the residue would not carry over, so it is not read
    assert _checked(r"So $\frac{2^{2026}}{4} \equiv 1 \pmod 7$.")[0][1] == "unchecked"


def test_an_expansion_or_factoring_is_checked_as_an_identity() -> None:
    assert _checked(r"Expanding, $(x+2)(x+3) = x^2 + 5x + 6$.") == [("(x+2)(x+3) = x^2 + 5x + 6", "ok", None)]
    assert _checked(r"Expanding, $(x+2)(x+3) = x^2 + 6x + 6$.") == [
        ("(x+2)(x+3) = x^2 + 6x + 6", "wrong", "x^2 + 5x + 6")
    ]
    assert _checked(r"We factor: $x^2 - 5x + 6 = (x-2)(x-4)$.") == [
        ("x^2 - 5x + 6 = (x-2)(x-4)", "wrong", "(x - 3)(x - 2)")
    ]
    # an equation to solve, or a new name, is not an identity
    assert _checked(r"Solve $(x+1)^2 = x^2 + 1$: we get $2x = 0$.") == []
    assert _checked(r"Let $u = x + 1$; expanding $u^2 = x^2 + 2x + 1$.") == []


def test_a_prompt_that_asks_to_expand_makes_its_response_links_identities() -> None:
    from mathcheck.verify import verify_inprocess

    # recorded in eval_set (latex-expression-wrong)
    response = "$$(x+1)^2 = x^2 + 1$$\n$\\boxed{x^2+1}$"
    result = verify_inprocess(response, prompt="Expand $(x+1)^2$.", gold="x^2 + 2x + 1")
    assert [(c.verdict, c.expected) for c in result.wrong_claims] == [("wrong", "x^2 + 2x + 1")]
    solving = verify_inprocess(response, prompt="Solve $(x+1)^2 = x^2 + 1$.")
    assert solving.wrong_claims == []


def test_an_equation_simplified_is_not_an_identity() -> None:
    # the leading terms differ: an equation to solve, even after "simplifying"
    assert _checked(r"Simplifying both sides: $3(x + 2) = 2x + 10$, so $x = 4$.") == []
