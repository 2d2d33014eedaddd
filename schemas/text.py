"""Text that PostgreSQL can store: NUL characters are refused at every edge (a NUL reaching the
read model would make its activity fail on every retry)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, model_validator


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
    rule still replay)."""
    for item in _strings(data):
        if CONTROL.search(item):
            raise ValueError("text must not contain control characters (other than tab and new line)")
    return data


def xml_safe(text: str) -> str:
    """Text an XML 1.0 document can carry, whatever was stored."""
    return _XML_UNSAFE.sub("\ufffd", text)


_XML_UNSAFE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _strings(data: Any):
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


class RefusesControls(RefusesNul):
    """Base of the request models of the HTTP API."""

    @model_validator(mode="before")
    @classmethod
    def _no_controls(cls, data: object) -> object:
        return reject_controls(data)


# ---------------------------------------------------------------------------------- contact details in free text
# What a resident or a call-taker types into a description or an address: mainland mobile and
# landline numbers, 18-digit resident ID numbers, e-mail addresses, and door / room numbers.
PHONE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(?:1[3-9][0-9](?:[- ]?[0-9]{4}){2}|0[1-9][0-9]{1,2}[- ]?[0-9]{3,4}[- ]?[0-9]{4})(?![0-9])")
ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 3号楼302室, 5栋2单元1201, 12号院3号, 302房, 2单元502, Room 302 — the building may stay, the door goes.
DOOR = re.compile(
    r"(?:[0-9０-９]+\s*单元\s*)?[0-9０-９]{1,5}\s*(?:室|房|户|号房)"
    r"|[0-9０-９]+\s*单元\s*[0-9０-９]{2,5}"
    r"|(?:[0-9０-９]+\s*(?:号楼|栋|幢|座))\s*[0-9０-９]{3,5}(?![0-9０-９号室房户])"
    r"|\b(?:room|rm\.?|apt\.?|flat)\s*[0-9A-Za-z-]+",
    re.IGNORECASE,
)
REDACTED = {"phone": "[电话已隐去]", "id": "[证件号已隐去]", "email": "[邮箱已隐去]", "door": "[门牌已隐去]"}


def contacts_in(text: str) -> dict[str, list[str]]:
    """The phone numbers and e-mail addresses written into `text`."""
    return {"phone": PHONE.findall(text), "email": EMAIL.findall(text)}


def redact_contacts(text: str) -> str:
    """Without phone, ID-card numbers and e-mail addresses (IDs first: they hold phone-like runs)."""
    text = ID_NUMBER.sub(REDACTED["id"], text)
    text = EMAIL.sub(REDACTED["email"], text)
    return PHONE.sub(REDACTED["phone"], text)


def redact_for_publication(text: str) -> str:
    """What a public feed may print of free text: no contact details and no door numbers."""
    return DOOR.sub(REDACTED["door"], redact_contacts(text))
