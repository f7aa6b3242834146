from engines.stops import StopMatcher


def run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(p) for p in pieces) + matcher.flush()
    return shown, matcher.stopped


def test_stop_string_split_across_tokens_is_never_shown() -> None:
    assert run(("###",), ["Answer: 4", " #", "#", "# more"]) == ("Answer: 4 ", True)


def test_partial_match_that_is_not_a_stop_is_released() -> None:
    assert run(("###",), ["a #", "# b"]) == ("a ## b", False)


def test_earliest_of_several_stops_wins() -> None:
    assert run(("END", "\n\n"), ["one\n\ntwo END"]) == ("one", True)


def test_no_stops_passes_text_through() -> None:
    assert run((), ["a", "b"]) == ("ab", False)
