"""Hidden characters are made visible and named before anyone reads outside text."""

from __future__ import annotations

from approver.visible import reveal, reveal_text


def test_plain_text_passes_through_unchanged_without_findings() -> None:
    revealed = reveal("delete_file notes.txt ünïcödé 文件 <b>bold</b>")
    assert revealed.text == "delete_file notes.txt ünïcödé 文件 <b>bold</b>"
    assert not revealed.suspicious and revealed.warning() == ""


def test_a_bidi_override_is_shown_as_a_code_point_with_a_warning() -> None:
    revealed = reveal("invoice\u202etxt.exe")
    assert revealed.text == "invoice<U+202E>txt.exe"
    assert revealed.findings == ("bidirectional control characters (they can reorder what you see)",)
    assert "<U+…>" in revealed.warning()


def test_zero_width_and_control_characters_are_each_named_once() -> None:
    revealed = reveal("a\u200bb\u200bc\x1b[31md\x00")
    assert revealed.text == "a<U+200B>b<U+200B>c<U+001B>[31md<U+0000>"
    assert revealed.findings == ("zero-width characters", "control characters")


def test_tag_characters_are_marked_and_the_hidden_text_they_spell_is_decoded() -> None:
    smuggled = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf ~")
    revealed = reveal(f"list files{smuggled}")
    assert revealed.text.startswith("list files<U+E0072><U+E006D>")
    assert revealed.hidden_text == "rm -rf ~"
    assert "'rm -rf ~'" in revealed.warning()


def test_newlines_are_marked_in_one_line_text_and_kept_in_multi_line_views() -> None:
    assert reveal_text("a\nb\tc") == "a<U+000A>b<U+0009>c"
    assert reveal_text("a\nb\tc", keep_newlines=True) == "a\nb\tc"
    assert reveal_text("a\u2028b", keep_newlines=True) == "a<U+2028>b"


def test_unusual_spaces_and_variation_selectors_are_visible() -> None:
    revealed = reveal("send\u00a0email\ufe01 ❤\ufe0f")
    assert revealed.text == "send<U+00A0>email<U+FE01> ❤\ufe0f"
    assert revealed.findings == ("unusual spaces", "variation selectors (they can carry hidden data)")
