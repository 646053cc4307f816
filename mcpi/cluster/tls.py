"""TLS to the broker and the result backend: the client options, and what a failure means.

With ``amqps://`` and ``rediss://`` URLs the hub and the workers connect with TLS 1.2 or
1.3 and verify the server's certificate against the configured CA (``tls_ca``: the
cluster's own CA, which the playbook makes), including that it was issued for the
address dialled; a client certificate goes with it where the cluster asks for one
(``tls_cert``/``tls_key``). Nothing here downgrades: a server that presents another
CA's certificate, or speaks plain TCP, fails the connection, and :func:`describe_failure`
says which in one line.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from mcpi.settings import Settings

#: The oldest TLS version mcpi speaks: TLS 1.2 (and 1.3, preferred where both ends can).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def broker_ssl_options(settings: Settings) -> dict[str, Any] | None:
    """py-amqp's ``ssl`` options for an ``amqps://`` broker URL (None for a plain one)."""
    if not settings.broker_tls:
        return None
    options: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED,
        # py-amqp checks the certificate's name or address only when this is set.
        "server_hostname": urlsplit(settings.broker_url or "").hostname,
        "tls_minimum_version": MINIMUM_VERSION,
    }
    if settings.tls_ca:
        options["ca_certs"] = str(settings.tls_ca)
    if settings.tls_cert and settings.tls_key:
        options["certfile"], options["keyfile"] = str(settings.tls_cert), str(settings.tls_key)
    return options


def backend_ssl_options(settings: Settings) -> dict[str, Any] | None:
    """Celery's ``redis_backend_use_ssl`` for a ``rediss://`` backend URL (None for a plain one).

    redis-py checks the certificate's name or address itself (``ssl_check_hostname``).
    """
    if not settings.backend_tls:
        return None
    options: dict[str, Any] = {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_check_hostname": True,
        "ssl_min_version": MINIMUM_VERSION,
    }
    if settings.tls_ca:
        options["ssl_ca_certs"] = str(settings.tls_ca)
    if settings.tls_cert and settings.tls_key:
        options["ssl_certfile"], options["ssl_keyfile"] = (
            str(settings.tls_cert),
            str(settings.tls_key),
        )
    return options


#: How :func:`describe_failure`'s phrase begins for a connection closed before TLS.
NO_HANDSHAKE = "no TLS handshake"


def describe_failure(error: BaseException, tls: bool) -> str | None:
    """What a failed connection means for TLS, in a phrase; None if it is not about TLS.

    Client libraries wrap the ``ssl`` error (kombu's OperationalError, redis-py's
    ConnectionError), so every error in the chain is looked at.
    """
    chain = list(_chain(error))
    for link in chain:
        text = " ".join(str(link).split())
        if isinstance(link, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            reason = getattr(link, "verify_message", "") or text
            return (
                f"its certificate was refused ({reason}): not signed by the cluster's CA, "
                "or not issued for this address"
            )
    if not tls:
        return None
    for link in chain:
        text = " ".join(str(link).split())
        if isinstance(link, ssl.SSLError) or any(
            word in text for word in ("SSL", "handshake", "EOF occurred")
        ):
            return (
                f"{NO_HANDSHAKE} ({text}): a plain-TCP port, or one that wants a client "
                "certificate?"
            )
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from or while handling, outermost first."""
    seen: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen
