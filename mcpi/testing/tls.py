"""A cluster CA of its own for the private servers: ECDSA P-256 keys, made with ``openssl``.

The same shape as the deployment's (a dedicated CA; server certificates whose subject
alternative names hold the addresses clients dial; client certificates for mutual TLS),
made with the ``openssl`` command that Debian installs, so that the tests need no
Python crypto library and the test servers run over TLS like a real cluster.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"
#: Beyond the 30 days within which `mcpi-hub status` warns of an ending certificate.
DAYS = 90
_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key (PEM files)."""

    cert: Path
    key: Path


class TestCA:
    """A CA in ``root``: :meth:`issue` signs server and client certificates with it."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, root: Path, name: str = "mcpi test CA") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = root / "ca.pem", root / "ca.key"
        _openssl(
            "req", "-x509", *_CURVE, "-keyout", self.key, "-out", self.cert,
            "-days", str(DAYS), "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self.key.chmod(0o600)

    def issue(
        self, name: str, addresses: tuple[str, ...] = ("127.0.0.1",), days: int = DAYS
    ) -> Issued:
        """A certificate for ``addresses`` (IP subject alternative names), server and client."""
        cert, key, request = (self.root / f"{name}{ext}" for ext in (".pem", ".key", ".csr"))
        extensions = self.root / f"{name}.ext"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={','.join(f'IP:{a}' for a in addresses)}\n"
        )
        _openssl("req", "-new", *_CURVE, "-keyout", key, "-out", request, "-subj", f"/CN={name}")
        _openssl(
            "x509", "-req", "-in", request, "-CA", self.cert, "-CAkey", self.key,
            "-set_serial", str(secrets.randbits(63)), "-days", str(days),
            "-extfile", extensions, "-out", cert,
        )  # fmt: skip
        key.chmod(0o600)
        return Issued(cert, key)


def _openssl(*args: object) -> None:
    done = subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")
