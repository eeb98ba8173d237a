"""GB 11643 ID numbers and masking: pure functions, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.parties.idnumbers import (
    InvalidIdNumber,
    birth_date,
    check_code,
    gender,
    is_minor_under_14,
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_phone,
    upgrade_to_18,
    validate_id_number,
)

TODAY = dt.date(2026, 3, 1)

# Known-good 18-character numbers (check codes computed independently of the code under test;
# the first is the sample on the Wikipedia page for 居民身份证号码).
VALID = [
    "11010519491231002X",
    "440304198503151231",
    "510102201202290026",
    "410101201206150012",
    "320583199912310081",
    "650102200001010012",
]


@pytest.mark.parametrize("number", VALID)
def test_valid_numbers_are_returned_unchanged(number):
    assert validate_id_number(number, today=TODAY) == number


def test_check_code_of_the_wikipedia_sample():
    assert check_code("11010519491231002") == "X"
    assert check_code("44052418800101001") == "4"


def test_lowercase_x_spaces_and_full_width_digits_are_normalised():
    assert validate_id_number("  11010519491231002x \n", today=TODAY) == "11010519491231002X"
    assert validate_id_number("110105 19491231 002X", today=TODAY) == "11010519491231002X"
    assert (
        validate_id_number("１１０１０５１９４９１２３１００２ｘ", today=TODAY)
        == "11010519491231002X"
    )


@pytest.mark.parametrize(
    "number", ["110105194912310021", "110105194912310020", "440304198503151230"]
)
def test_wrong_check_code_is_rejected(number):
    with pytest.raises(InvalidIdNumber, match=r"^身份证号校验码错误"):
        validate_id_number(number, today=TODAY)


@pytest.mark.parametrize("number", ["11010519491231002", "11010519491231002X1", "1101051949", "1"])
def test_wrong_length_is_rejected(number):
    with pytest.raises(InvalidIdNumber, match=r"^身份证号位数不对"):
        validate_id_number(number, today=TODAY)


def test_empty_is_rejected():
    with pytest.raises(InvalidIdNumber, match=r"^身份证号不能为空$"):
        validate_id_number("   ", today=TODAY)


@pytest.mark.parametrize(
    "number", ["1101051949123100XX", "X10105194912310021", "11010519491231-02X"]
)
def test_non_digits_are_rejected(number):
    with pytest.raises(InvalidIdNumber, match=r"^身份证号只能由数字组成"):
        validate_id_number(number, today=TODAY)


@pytest.mark.parametrize("first17", ["01010519491231002", "91010519491231002", "10010519491231002"])
def test_implausible_region_is_rejected(first17):
    with pytest.raises(InvalidIdNumber, match="地区码"):
        validate_id_number(first17 + check_code(first17), today=TODAY)


@pytest.mark.parametrize(
    "birth",
    [
        "20230230",  # 30 February
        "19490231",
        "20230229",  # not a leap year
        "19491301",  # month 13
        "19491200",  # day 0
    ],
)
def test_impossible_birth_date_is_rejected_even_with_a_correct_check_code(birth):
    first17 = "110105" + birth + "002"
    with pytest.raises(InvalidIdNumber, match=r"^身份证号中的出生日期无效$"):
        validate_id_number(first17 + check_code(first17), today=TODAY)


def test_future_birth_date_is_rejected():
    first17 = "11010520260302001"  # the day after TODAY
    with pytest.raises(InvalidIdNumber, match=r"^身份证号中的出生日期晚于今天$"):
        validate_id_number(first17 + check_code(first17), today=TODAY)


def test_birth_date_today_is_accepted():
    number = "11010520260301001" + check_code("11010520260301001")
    assert validate_id_number(number, today=TODAY) == number


def test_birth_before_1900_is_rejected():
    with pytest.raises(InvalidIdNumber, match=r"^身份证号中的出生日期早于1900年$"):
        validate_id_number("440524188001010014", today=TODAY)


def test_messages_never_contain_the_number():
    for number in ["110105194912310021", "11010519491231002", "440524188001010014"]:
        with pytest.raises(InvalidIdNumber) as info:
            validate_id_number(number, today=TODAY)
        assert number not in str(info.value)
        assert "\n" not in str(info.value)


def test_legacy_15_digit_numbers_are_accepted_with_19yy_birth_date():
    assert validate_id_number("410101800101123", today=TODAY) == "410101800101123"
    assert birth_date("410101800101123") == dt.date(1980, 1, 1)
    assert gender("410101800101123") == "male"


def test_legacy_15_digit_number_with_bad_date_or_letters_is_rejected():
    with pytest.raises(InvalidIdNumber, match=r"^身份证号中的出生日期无效$"):
        validate_id_number("410101800230123", today=TODAY)
    with pytest.raises(InvalidIdNumber, match=r"^旧版15位身份证号只能由数字组成$"):
        validate_id_number("41010180010112X", today=TODAY)


def test_upgrade_to_18_inserts_19_and_the_check_code():
    assert upgrade_to_18("410101800101123") == "410101198001011233"
    assert validate_id_number(upgrade_to_18("410101800101123"), today=TODAY)
    assert upgrade_to_18("11010519491231002X") == "11010519491231002X"


def test_birth_date_and_gender():
    assert birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert gender("11010519491231002X") == "female"  # digit 17 is 2
    assert gender("440304198503151231") == "male"  # digit 17 is 3


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 6, 14), True),  # the day before the 14th birthday
        (dt.date(2026, 6, 15), False),  # 14th birthday
        (dt.date(2012, 6, 15), True),  # day of birth
    ],
)
def test_minor_under_14_around_the_birthday(today, expected):
    assert is_minor_under_14("410101201206150012", today=today) is expected


def test_minor_born_on_29_february_turns_14_on_1_march():
    assert is_minor_under_14("510102201202290026", today=dt.date(2026, 2, 28)) is True
    assert is_minor_under_14("510102201202290026", today=dt.date(2026, 3, 1)) is False


def test_adult_is_not_a_minor():
    assert is_minor_under_14("11010519491231002X", today=TODAY) is False


def test_mask_id_number_keeps_first_3_and_last_4():
    assert mask_id_number("410101201206150012") == "410***********0012"
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert len(mask_id_number("11010519491231002X")) == 18


def test_mask_legacy_id_number_keeps_first_3_and_last_3():
    assert mask_id_number("410101800101123") == "410*********123"


def test_mask_phone():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("037162345678") == "037*****5678"
    assert mask_phone("12345") == "*****"
    assert mask_phone("") == ""


def test_mask_name_keeps_the_surname():
    assert mask_name("张三") == "张*"
    assert mask_name("张三丰") == "张**"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "*"
    assert mask_name("") == ""


def test_normalise_phone():
    assert normalise_phone(" 138 1234-1234 ") == "13812341234"
    assert normalise_phone("+86 138 1234 1234") == "13812341234"
    assert normalise_phone("0371-62345678") == "037162345678"
    assert normalise_phone("") == ""
    with pytest.raises(ValueError, match=r"^电话号码只能包含数字$"):
        normalise_phone("138abc")


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("13912345678", "13912345678"),
        ("199 1234 5678", "19912345678"),
        ("010-62345678", "01062345678"),
        ("021 5555 1234", "02155551234"),
        ("0374-1234567", "03741234567"),
        ("0371-62345678", "037162345678"),
        ("+86 186 1234 5678", "18612345678"),
    ],
)
def test_mainland_mobile_and_landline_numbers_are_accepted(text, normalised):
    assert normalise_phone(text) == normalised


@pytest.mark.parametrize(
    "text",
    [
        "12345",  # too short for anything
        "12312345678",  # 11 digits but not a mobile range
        "23912345678",  # no leading 1
        "62345678",  # a landline without its area code
        "010-1234567",  # Beijing numbers have 8 digits
        "03711234",  # 4-digit area code, 4 digits left
        "139123456789",  # 12 digits
        "+1 415 555 2671",  # a foreign number
    ],
)
def test_other_numbers_are_refused_with_the_reason(text):
    with pytest.raises(ValueError, match=r"^电话号码无效：请填写11位手机号码"):
        normalise_phone(text)
