"""``rabbitmq_password_hash``: RabbitMQ's salted SHA-256 password hash, for definitions.

RabbitMQ stores ``base64(salt + sha256(salt + password))`` with a 4-byte salt. Writing the
hash into the definitions file keeps the password itself off the broker's disk and off
any command line (``rabbitmqctl add_user`` would put it in the process list). The salt
is derived from the password so that the rendered file, and so the playbook run, is
idempotent; the passwords are long random strings, so a fixed derivation costs nothing.
"""

from __future__ import annotations

import base64
import hashlib


def rabbitmq_password_hash(password: str) -> str:
    secret = password.encode()
    salt = hashlib.sha256(b"mcpi-rabbitmq-salt:" + secret).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + secret).digest()).decode()


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"rabbitmq_password_hash": rabbitmq_password_hash}
