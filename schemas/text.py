"""Text that PostgreSQL can store: NUL characters are refused at every edge (a NUL reaching the
read model would make its activity fail on every retry)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError


def reject_nul(data: Any) -> Any:
    """For `model_validator(mode="before")`: raise if any string in the input holds NUL."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return data


class RefusesNul(BaseModel):
    """Base of every model that takes text from outside (intake, actions, ratings, reviews)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        return reject_nul(data)


# ---------------------------------------------------------------------------------- control characters
# C0 controls other than tab, newline and carriage return, DEL, and the two non-characters that
# XML 1.0 cannot carry: one of them in a description made the public XML feed unreadable.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def reject_controls(data: Any) -> Any:
    """Like reject_nul, for every control character: for the models of the HTTP edge (the
    workflow's own input models keep refusing NUL only, so that histories written before this
    rule still replay). Models given already built (Open311's reporter) are looked into too; the
    error names the field (`ctx.field`, the path below the model being validated)."""
    for where, item in _strings(data):
        if CONTROL.search(item):
            raise PydanticCustomError(
                "control_characters", "text must not contain control characters (other than tab and new line)",
                {"field": ".".join(str(p) for p in where)},
            )
    return data


def xml_safe(text: str) -> str:
    """Text an XML 1.0 document can carry, whatever was stored."""
    return _XML_UNSAFE.sub("\ufffd", text)


_XML_UNSAFE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _strings(data: Any):
    """Every string in `data` (keys too) with its path: dicts, lists and pydantic models."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, BaseModel):
            stack.extend((where + (k,), v) for k, v in item)
        elif isinstance(item, dict):
            for k, v in item.items():
                stack.extend([(where + (k,), k), (where + (k,), v)])
        elif isinstance(item, (list, tuple)):
            stack.extend((where + (i,), v) for i, v in enumerate(item))


class RefusesControls(RefusesNul):
    """Base of the request models of the HTTP API."""

    @model_validator(mode="before")
    @classmethod
    def _no_controls(cls, data: object) -> object:
        return reject_controls(data)


# ---------------------------------------------------------------------------------- contact details in free text
# What a resident or a call-taker types into a description or an address: mainland mobile and
# landline numbers, resident ID numbers (18 digits, and the old 15), e-mail addresses, and door /
# room numbers. The patterns read the text's NFKC form, so full-width digits, letters, ＠, －, ．
# and parentheses are matched like their ASCII twins; what is replaced is the original's span, so
# the text keeps its own characters (its Chinese punctuation) everywhere else.
_SEP = r"[-.\u2010-\u2015 ]"  # between groups of digits: - . space, and the dashes NFKC keeps
PHONE = re.compile(
    r"(?<![0-9])(?:\(?\+?86\)?" + _SEP + r"?)?"
    r"(?:1[3-9](?:" + _SEP + r"?[0-9]){9}"  # 11 digits, grouped any way: 139 777 78888, 139.7777.8888
    r"|(?:\(0[1-9][0-9]{1,2}\)|0[1-9][0-9]{1,2})" + _SEP + r"?[0-9]{3,4}" + _SEP + r"?[0-9]{4})"  # (010)8456-1234
    r"(?![0-9])"
)
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
ID_NUMBER = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}[ -]?(?:18|19|20)[0-9]{2}" + _DATE + r"[ -]?[0-9]{3}[0-9Xx](?![0-9])"  # 18, as 6-8-4 too
    r"|(?<![0-9])[1-9][0-9]{5}[0-9]{2}" + _DATE + r"[0-9]{3}(?![0-9Xx])"  # the old 15-digit number
)
# wxm@qq.com, wxm＠qq.com (NFKC), wxm@qq。com: a domain's dot written as the Chinese full stop.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:[.。][A-Za-z0-9-]+)*[.。][A-Za-z]{2,}")
# Door numbers go, their building stays (`redact` is what is hidden): 3号楼302室 → 3号楼[…],
# 5栋2单元1201, 5号楼2门301, 3-2-302 (building-unit-room) → 3-[…], 三号楼三〇二室, Room 302.
# Not doors: counts and sizes (30户居民, 2室1厅, 东门100米, 3棵树), dates, amounts.
_NOT_A_MEASURE = r"(?![0-9])(?!\s*(?:米|元|路|公里|号线|块|个|人|斤|平|次|天|年|月|日|时|点|分|秒|吨|辆|棵|株|%))"
DOOR = re.compile(
    r"(?P<redact>(?:[0-9]+\s*(?:单元|门)\s*)?[0-9]{1,5}\s*(?:室|号房|房(?![间屋子东租价产]))"
    r"(?!\s*[0-9一二两三四五六七八九十]\s*厅)"  # 2室1厅 is a flat's layout
    r"|[0-9]{3,5}\s*户(?![籍口数人居家主民])"
    r"|[0-9]+\s*(?:单元|门)\s*[0-9]{2,5}" + _NOT_A_MEASURE + r")"
    r"|[0-9]+\s*(?:号楼|栋|幢|座)\s*(?P<room>[0-9]{3,5})(?![0-9号室房户])"
    r"|(?<![0-9-])[0-9]{1,3}-(?P<unit_room>[0-9]{1,2}-[0-9]{3,4})(?![0-9-])"
    r"|(?P<cn>[〇零一二三四五六七八九]{3,4}\s*(?:室|号房|房|户))"
    r"|(?P<en>\b(?:room|rm\.?|apt\.?|flat)\s*[0-9A-Za-z-]+)",
    re.IGNORECASE,
)
REDACTED = {"phone": "[电话已隐去]", "id": "[证件号已隐去]", "email": "[邮箱已隐去]", "door": "[门牌已隐去]"}


def _nfkc(text: str) -> tuple[str, list[int]]:
    """The NFKC form of `text`, character by character, and for each of its characters the index
    of the original character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        n = unicodedata.normalize("NFKC", ch) if ord(ch) > 127 else ch
        out.append(n)
        origin.extend([i] * len(n))
    return "".join(out), origin


def _redact(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """`pattern` matched on the NFKC form; the span it names (its one matched named group, else
    the whole match) replaced in the original text."""
    norm, origin = _nfkc(text)
    pieces, last = [], 0
    for m in pattern.finditer(norm):
        group = next((g for g, v in m.groupdict().items() if v is not None), None)
        start, end = m.span(group) if group else m.span()
        if start == end or origin[start] < last:
            continue
        pieces += [text[last:origin[start]], replacement]
        last = origin[end - 1] + 1
    return "".join(pieces) + text[last:]


def _phone_contact(found: str) -> str:
    """A phone number found in text, as the reporter's contact accepts it."""
    return re.sub(_SEP + "+", "-", unicodedata.normalize("NFKC", found)).strip("-")


def contacts_in(text: str) -> dict[str, list[str]]:
    """The phone numbers and e-mail addresses written into `text` (ID numbers are not phones)."""
    norm = ID_NUMBER.sub(" ", _nfkc(text)[0])
    return {
        "phone": [_phone_contact(m.group()) for m in PHONE.finditer(norm)],
        "email": [m.group().replace("。", ".") for m in EMAIL.finditer(norm)],
    }


def redact_contacts(text: str) -> str:
    """Without phone, ID-card numbers and e-mail addresses (IDs first: they hold phone-like runs)."""
    text = _redact(ID_NUMBER, REDACTED["id"], text)
    text = _redact(EMAIL, REDACTED["email"], text)
    return _redact(PHONE, REDACTED["phone"], text)


def redact_for_publication(text: str) -> str:
    """What a public feed may print of free text: no contact details and no door numbers."""
    return _redact(DOOR, REDACTED["door"], redact_contacts(text))
