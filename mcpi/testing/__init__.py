"""Test utilities that ship with mcpi: real, private RabbitMQ, Redis and Celery worker
processes on free loopback ports (:mod:`~mcpi.testing.servers`), for the test suite
and ``mcpi-hub bench``; and an executor that computes chunks in the calling thread, with
faults on demand (:mod:`~mcpi.testing.inprocess`), for the hub's fast tests. Nothing in
the product imports this package.
"""
