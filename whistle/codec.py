"""AES-GCM payload codec: every Temporal payload (reporters' personal data among them) is
encrypted before it leaves the process, so workflow history on the server holds ciphertext.

Keys are a keyring of (key id, 256-bit key); the first encrypts, all decrypt, so after a
rotation old payloads still decrypt. The key id travels in the payload's metadata.

A payload that was not encrypted is refused at decode (`strict`, every client and worker of
whistle): anyone who reaches Temporal's frontend could write one, and AES-GCM only proves
integrity when nothing else is accepted. Refused means replaced by REFUSED, a JSON string that
no input model accepts: an update carrying it is rejected (its validator never sees it) and the
workflow goes on. Raising instead would fail the whole workflow task, again at every retry, and
let anyone on the network wedge any issue with one update. Only the Replayer of histories
recorded before the codec reads plain payloads as they are (`strict=False`).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
REFUSED_TEXT = "refused: this payload was not encrypted with the keyring"
REFUSED = Payload(metadata={"encoding": b"json/plain"}, data=f'"{REFUSED_TEXT}"'.encode())
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyringError(ValueError):
    pass


def parse_key_entries(text: str) -> list[tuple[str, bytes]]:
    """`kid:base64key` entries separated by commas or new lines ('#' starts a comment line)."""
    keys = []
    for entry in re.split(r"[,\n]", text):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise KeyringError("a key entry is 'kid:base64key'")
        if not _KEY_ID.match(key_id.strip()):
            raise KeyringError(f"key id {key_id.strip()!r}: letters, digits, '_.-', at most 32")
        try:
            keys.append((key_id.strip(), base64.b64decode(encoded.strip(), validate=True)))
        except ValueError:
            raise KeyringError(f"key {key_id.strip()!r} is not valid base64") from None
    return keys


def write_secret(path: Path, text: str) -> None:
    """Create a file readable by its owner only, with that mode from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Keyring:
    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        if not keys:
            raise KeyringError("the keyring is empty: give at least one key")
        for key_id, key in keys:
            if not _KEY_ID.match(key_id):
                raise KeyringError(f"key id {key_id!r}: letters, digits, '_.-', at most 32")
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        self.active_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """`kid:base64key` entries separated by commas or new lines; the first is active."""
        return cls(parse_key_entries(text))

    @staticmethod
    def new_entry(key_id: str) -> str:
        return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"

    def open(self, p: Payload) -> Payload:
        """The payload an encrypted payload holds (raises if it fails authentication)."""
        key_id = p.metadata["encryption-key-id"].decode()
        plain = self.cipher(key_id).decrypt(p.data[:12], p.data[12:], key_id.encode())
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded

    def cipher(self, key_id: str) -> AESGCM:
        try:
            return self._ciphers[key_id]
        except KeyError:
            raise KeyringError(f"payload encrypted with unknown key {key_id!r}") from None


def load_keyring(keys: str | None, key_file: Path | None) -> Keyring:
    if keys:
        return Keyring.parse(keys)
    if key_file is not None:
        return Keyring.parse(Path(key_file).read_text())
    raise KeyringError("no payload encryption key: set WHISTLE_CODEC_KEYS or WHISTLE_CODEC_KEY_FILE")


def ensure_key_file(path: Path) -> Path:
    """A key file for `whistle dev`, made once (0600) and kept with the data."""
    if not path.exists():
        write_secret(path, Keyring.new_entry("dev-1") + "\n")
    return path


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring, strict: bool = True):
        self.keyring, self.strict = keyring, strict

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        key_id = self.keyring.active_id
        cipher = self.keyring.cipher(key_id)
        out = []
        for p in payloads:
            nonce = secrets.token_bytes(12)
            data = nonce + cipher.encrypt(nonce, p.SerializeToString(), key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, "encryption-key-id": key_id.encode()}, data=data))
        return out

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(REFUSED if self.strict else p)
                continue
            out.append(self.keyring.open(p))
        return out
