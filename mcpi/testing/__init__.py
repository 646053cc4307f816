"""Test utilities that ship with mcpi: real, private RabbitMQ, Redis and Celery worker
processes on free loopback ports (:mod:`~mcpi.testing.servers`), for the test suite
and ``mcpi-hub bench``. Nothing in the product imports this package.
"""
