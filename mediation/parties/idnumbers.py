"""Resident ID numbers (居民身份证号码, GB 11643-1999) and display masking. Pure Python.

Accepted forms (DOMAIN.md §5):

* 18 characters: 6-digit region code, birth date YYYYMMDD, 3-digit sequence, check code
  (ISO 7064 MOD 11-2; ``X`` stands for 10).
* 15 digits, the legacy first-generation form: region code, birth date YYMMDD (always 19YY),
  3-digit sequence, no check code. Cards of this form are no longer issued, but old files and
  people's memories still carry them, so they are accepted and kept as written. For look-ups
  use ``upgrade_to_18`` so that both forms of one person match.

Numbers of the 2023 foreign permanent-resident card (first digit 9) are not 居民身份证 numbers
and are rejected. Messages are one line, in Chinese, and never repeat the number.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CODES = "10X98765432"
MINOR_AGE = 14  # 个人信息保护法 Art 31: 不满十四周岁未成年人

_SHANGHAI = ZoneInfo("Asia/Shanghai")
_EARLIEST_BIRTH = dt.date(1900, 1, 1)
_RE_18 = re.compile(r"[0-9]{17}[0-9X]")
_RE_15 = re.compile(r"[0-9]{15}")
_RE_PHONE = re.compile(r"\+?[0-9]{3,20}")
# 手机号码: 11 digits, 1[3-9]xxxxxxxxx.
_RE_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# 固定电话 with its area code: 010 and 02x take 8-digit numbers, the 4-digit codes
# (0371, 0374 …) 7 or 8 digits.
_RE_LANDLINE = re.compile(r"0(?:10|2[0-9])[0-9]{8}|0[3-9][0-9]{2}[0-9]{7,8}")


class InvalidIdNumber(ValueError):
    """The text is not a valid resident ID number; ``str(exc)`` is the user message."""


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and Ｘ (common with Chinese input methods) into ASCII.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).upper()


def check_code(first17: str) -> str:
    """The GB 11643 check code for the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CODES[total % 11]


def _birth_date_text(number: str) -> str:
    return number[6:14] if len(number) == 18 else "19" + number[6:12]


def _parse_birth_date(number: str) -> dt.date:
    text = _birth_date_text(number)
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise InvalidIdNumber("身份证号中的出生日期无效") from None


def validate_id_number(text: str, *, today: dt.date | None = None) -> str:
    """Check an ID number and return its normal form (no spaces, upper-case ``X``).

    ``today`` bounds the birth date; it defaults to the current date in Asia/Shanghai.
    Raises ``InvalidIdNumber`` with a specific message.
    """
    number = _normalise(text)
    if not number:
        raise InvalidIdNumber("身份证号不能为空")
    if len(number) not in (15, 18):
        raise InvalidIdNumber(f"身份证号位数不对：应为18位（或旧版15位），实为{len(number)}位")
    if len(number) == 18 and not _RE_18.fullmatch(number):
        raise InvalidIdNumber("身份证号只能由数字组成，最后一位可以是X")
    if len(number) == 15 and not _RE_15.fullmatch(number):
        raise InvalidIdNumber("旧版15位身份证号只能由数字组成")
    if number[0] not in "12345678" or number[1] == "0":
        raise InvalidIdNumber("身份证号前两位不是有效的地区码")
    born = _parse_birth_date(number)
    if today is None:
        today = dt.datetime.now(_SHANGHAI).date()
    if born > today:
        raise InvalidIdNumber("身份证号中的出生日期晚于今天")
    if born < _EARLIEST_BIRTH:
        raise InvalidIdNumber("身份证号中的出生日期早于1900年")
    if len(number) == 18 and check_code(number[:17]) != number[17]:
        raise InvalidIdNumber("身份证号校验码错误，请核对每一位")
    return number


def upgrade_to_18(number: str) -> str:
    """The 18-character form of a valid number (15-digit: insert "19" and add the check code)."""
    if len(number) == 18:
        return number
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_code(first17)


def birth_date(number: str) -> dt.date:
    """The birth date held in digits 7–14 (15-digit: 19 + digits 7–12)."""
    return _parse_birth_date(_normalise(number))


def gender(number: str) -> str:
    """``"male"`` or ``"female"``: the sequence code's last digit is odd for men."""
    number = _normalise(number)
    digit = number[16] if len(number) == 18 else number[14]
    return "male" if int(digit) % 2 else "female"


def is_under(born: dt.date, years: int, *, today: dt.date) -> bool:
    """True if, on ``today``, fewer than ``years`` full years have passed since ``born``.

    Someone born on 29 February reaches an age on 1 March of a common year; this errs on
    the side of treating a person as a minor one day longer.
    """
    try:
        birthday = born.replace(year=born.year + years)
    except ValueError:  # 29 February in a common year
        birthday = dt.date(born.year + years, 3, 1)
    return today < birthday


def is_minor_under_14(number: str, *, today: dt.date) -> bool:
    """PIPL Art 31: whether the holder is under 14 on ``today``."""
    return is_under(birth_date(number), MINOR_AGE, today=today)


def mask_id_number(number: str) -> str:
    """前3后4 for 18 characters (``410***********1234``), 前3后3 for legacy 15 digits."""
    number = _normalise(number)
    if len(number) == 15:
        return number[:3] + "*" * 9 + number[-3:]
    if len(number) >= 8:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    return "*" * len(number)


def normalise_phone(text: str) -> str:
    """Digits only; drops spaces, hyphens and the +86 / 0086 country code.

    Only a mainland mobile number (11 digits) or a landline with its area code is accepted;
    raises ``ValueError`` (with the reason, in Chinese) for anything else.
    """
    phone = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", text or ""))
    if not phone:
        return ""
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix) and len(phone) == len(prefix) + 11:
            phone = phone[len(prefix) :]
    if not _RE_PHONE.fullmatch(phone):
        raise ValueError("电话号码只能包含数字")
    if not (_RE_MOBILE.fullmatch(phone) or _RE_LANDLINE.fullmatch(phone)):
        raise ValueError("电话号码无效：请填写11位手机号码，或带区号的固定电话（如 0371-62345678）")
    return phone


def mask_phone(phone: str) -> str:
    """``13812341234`` → ``138****1234``: keep the first 3 and the last 4 characters."""
    if len(phone) >= 8:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def mask_name(name: str) -> str:
    """``张三`` → ``张*``, ``张三丰`` → ``张**``: keep the first character (the surname)."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)
