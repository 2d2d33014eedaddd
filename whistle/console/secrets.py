"""`whistle secrets init DIR`: every secret an installation needs, made once, by the machine.

Hand-made keys are where deployments go wrong (a short token secret, a codec key that is not
32 bytes, an API key pasted into a principals file in clear), so one command makes them all:

- `whistle.env`: the secret settings as an env file (the API and the worker read the same one):
  `WHISTLE_CODEC_KEYS` (payload encryption), `WHISTLE_ACTOR_KEYS` (the API's attestation of
  actors, which the worker checks), `WHISTLE_TOKEN_SECRET` (residents' feedback tokens) and
  `PGPASSWORD` (the read model's password; the database URL itself carries none).
- `principals.yaml`: one API principal per intake channel, per unit of the jurisdiction, the
  supervisor and ops, with the SHA-256 of its key (what the API loads);
  `api-keys.yaml`: the keys themselves, to hand to each principal's owner and then delete here.
- `readmodel-postgres.env`: `POSTGRES_PASSWORD` of the read model's server (the same as
  `PGPASSWORD` above); `temporal-postgres.env`: the password of Temporal's own PostgreSQL, under
  the names its server (`POSTGRES_PWD`), schema tool (`SQL_PASSWORD`) and database image
  (`POSTGRES_PASSWORD`) read.

Every file is 0600 in a 0700 directory. Nothing is overwritten: a directory that already holds
any of them is refused, because replacing a codec key would make old payloads unreadable.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import yaml

from schemas.intake import Channel
from schemas.jurisdiction import Jurisdiction, Level
from schemas.principal import Role
from whistle.codec import Keyring
from whistle.principals import hash_key

FILES = ("whistle.env", "principals.yaml", "api-keys.yaml", "readmodel-postgres.env", "temporal-postgres.env")
_UNIT_ROLE = {Level.grid: Role.grid, Level.community: Role.community, Level.area: Role.area, Level.street: Role.street}


class SecretsError(Exception):
    pass


def install_principals(j: Jurisdiction) -> list[dict[str, str]]:
    """(id, role, unit or channel) of every principal an installation starts with."""
    out = [{"id": f"intake-{c.value}", "role": Role.intake.value, "channel": c.value} for c in Channel]
    out += [{"id": f"{u.level.value}-{u.id}", "role": _UNIT_ROLE[u.level].value, "unit_id": u.id}
            for u in j.units if u.level in _UNIT_ROLE]
    out += [{"id": f"dept-{d.id}", "role": Role.department.value, "unit_id": d.id} for d in j.departments]
    out += [{"id": "supervisor", "role": Role.supervisor.value}, {"id": "ops", "role": Role.ops.value}]
    return out


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def init_secrets(directory: Path, j: Jurisdiction) -> list[Path]:
    present = [f for f in FILES if (directory / f).exists()]
    if present:
        raise SecretsError(f"{directory} already holds {', '.join(present)}: secrets are made once and never overwritten (rotate keys by hand, see deploy/README.md)")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    principals, keys = [], []
    for p in install_principals(j):
        key = f"wk_{secrets.token_urlsafe(32)}"
        principals.append(p | {"key_sha256": hash_key(key)})
        keys.append(p | {"api_key": key})
    readmodel_password, temporal_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    header = "# Made by `whistle secrets init`. Keep private.\n"
    _write(directory / "whistle.env", header + "\n".join([
        f"WHISTLE_CODEC_KEYS={Keyring.new_entry(f'c{stamp}')}",
        f"WHISTLE_ACTOR_KEYS={Keyring.new_entry(f'a{stamp}')}",
        f"WHISTLE_TOKEN_SECRET={secrets.token_urlsafe(32)}",
        f"PGPASSWORD={readmodel_password}",
    ]) + "\n")
    _write(directory / "principals.yaml", yaml.safe_dump({"principals": principals}, allow_unicode=True, sort_keys=False))
    _write(directory / "api-keys.yaml", "# API keys in clear: hand each to its owner, then delete this file.\n"
           + yaml.safe_dump({"keys": keys}, allow_unicode=True, sort_keys=False))
    _write(directory / "readmodel-postgres.env", f"{header}POSTGRES_PASSWORD={readmodel_password}\n")
    _write(directory / "temporal-postgres.env", header + "".join(
        f"{name}={temporal_password}\n" for name in ("POSTGRES_PASSWORD", "POSTGRES_PWD", "SQL_PASSWORD")))
    return [directory / f for f in FILES]
