"""Tool names that look alike across servers are found and explained."""

from __future__ import annotations

from approver.policy.confusables import Unusual, find_lookalikes, is_suspicious, skeleton, unusual_characters


def test_a_cyrillic_dze_is_found_and_named_with_its_position() -> None:
    [group] = find_lookalikes({"mail": ["send_email", "list_inbox"], "evil": ["ѕend_email"]})
    assert [(s.name, s.servers) for s in group.spellings] == [
        ("send_email", ("mail",)),
        ("ѕend_email", ("evil",)),
    ]
    assert group.spellings[1].unusual == (Unusual(0, 0x0455, "CYRILLIC SMALL LETTER DZE"),)
    assert group.describe() == (
        "send_email (mail) vs ѕend_email (evil): U+0455 CYRILLIC SMALL LETTER DZE at position 0"
    )
    assert group.involves("evil", "ѕend_email") and group.involves("mail", "send_email")
    assert not group.involves("mail", "ѕend_email")


def test_a_greek_omicron_collides_with_a_latin_o() -> None:
    [group] = find_lookalikes({"fs": ["read_file", "open_file"], "other": ["οpen_file"]})
    assert group.describe() == (
        "open_file (fs) vs οpen_file (other): U+03BF GREEK SMALL LETTER OMICRON at position 0"
    )


def test_names_differing_only_in_case_are_look_alikes() -> None:
    [group] = find_lookalikes({"a": ["Send_Email"], "b": ["send_email"]})
    assert {s.name for s in group.spellings} == {"Send_Email", "send_email"}
    assert group.describe().endswith("differ only in letter case or look-alike letters and digits")


def test_names_that_merely_share_a_prefix_are_not_flagged() -> None:
    assert find_lookalikes({"a": ["send_email", "send_email_draft"], "b": ["send_emails", "send"]}) == []


def test_separators_differ_visibly_and_are_not_look_alikes() -> None:
    assert find_lookalikes({"a": ["send_email"], "b": ["send-email", "send.email", "sendemail"]}) == []


def test_unicode_dashes_look_like_a_hyphen() -> None:
    assert skeleton("send\u2010email") == skeleton("send-email") != skeleton("send_email")


def test_the_same_name_on_two_servers_alone_is_not_reported() -> None:
    assert find_lookalikes({"home": ["read_file"], "work": ["read_file"]}) == []


def test_a_reported_group_lists_every_server_offering_a_spelling() -> None:
    [group] = find_lookalikes({"home": ["read_file"], "work": ["read_file"], "evil": ["rеad_file"]})
    assert [s.servers for s in group.spellings] == [("home", "work"), ("evil",)]
    assert group.describe().startswith("read_file (home, work) vs rеad_file (evil): U+0435 CYRILLIC")


def test_two_look_alikes_on_the_same_server_are_reported() -> None:
    [group] = find_lookalikes({"evil": ["delete", "dеlete"]})
    assert [s.servers for s in group.spellings] == [("evil",), ("evil",)]


def test_a_zero_width_character_inside_a_name_is_dropped_and_shown_in_the_description() -> None:
    [group] = find_lookalikes({"mail": ["send_email"], "evil": ["send\u200b_email"]})
    assert group.describe() == (
        "send_email (mail) vs send<U+200B>_email (evil): U+200B ZERO WIDTH SPACE at position 4"
    )


def test_bidi_controls_and_variation_selectors_are_dropped() -> None:
    assert skeleton("send\u202e_email\ufe0f\U000e0100") == skeleton("send_email")


def test_fullwidth_letters_are_normalised_by_nfkc() -> None:
    assert skeleton("ｓｅｎｄ＿ｅｍａｉｌ") == skeleton("send_email")


def test_capital_look_alikes_map_before_casefolding() -> None:
    assert skeleton("ΗΕLLO") == skeleton("HELLO")  # Greek capital eta and epsilon
    assert skeleton("ΡΑΥ") == skeleton("pay")


def test_one_l_and_capital_i_and_zero_o_and_rn_m_are_look_alikes() -> None:
    assert skeleton("sIack") == skeleton("slack") == skeleton("s1ack")
    assert skeleton("f00") == skeleton("foo")
    assert skeleton("rnodern") == skeleton("modem")


def test_a_character_without_a_unicode_name_is_described_by_its_category() -> None:
    assert unusual_characters("a\x00b") == (Unusual(1, 0, "<Cc>"),)


def test_three_spellings_each_say_which_characters_are_unusual() -> None:
    [group] = find_lookalikes({"a": ["pay"], "b": ["раy"], "c": ["pαy"]})
    assert group.describe() == (
        "pay (a) vs pαy (c) vs раy (b): pαy: U+03B1 GREEK SMALL LETTER ALPHA at position 1; "
        "раy: U+0440 CYRILLIC SMALL LETTER ER at position 0, U+0430 CYRILLIC SMALL LETTER A at position 1"
    )


def test_a_name_mixing_latin_with_cyrillic_or_greek_is_suspicious() -> None:
    assert is_suspicious("ѕend_email")
    assert is_suspicious("οpen_file")
    assert is_suspicious("send\u200b_email")


def test_names_in_one_script_or_with_east_asian_letters_are_not_suspicious() -> None:
    assert not is_suspicious("send_email")
    assert not is_suspicious("отправить_письмо")
    assert not is_suspicious("ｓｅｎｄ_email")
    assert not is_suspicious("search_検索_ファイル")
    assert not is_suspicious("café_crème")


def test_ten_thousand_names_are_grouped_by_skeleton() -> None:
    names = {f"server{s}": [f"tool_{s}_{t}" for t in range(1000)] for s in range(10)}
    names["evil"] = ["tооl_3_7"]
    [group] = find_lookalikes(names)
    assert [s.name for s in group.spellings] == ["tool_3_7", "tооl_3_7"]
