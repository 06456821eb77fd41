"""Fixtures of the registry tests: clients with millisecond retry delays, closed after each test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from pipeline.errors import ResolveError
from pipeline.registry import DockerConfig, RegistryClient, RegistryConfig, RetryPolicy, Transport

#: Retries with millisecond waits: fault tests stay fast, backoff and caps stay observable.
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.004, max_retry_after=0.01)


class ClientFactory(Protocol):
    def __call__(self, *, config: RegistryConfig | None = None, credentials: DockerConfig | None = None,
                 retry: RetryPolicy = FAST, timeout: float = 5.0, max_connections: int = 16,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> RegistryClient: ...


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build registry clients (each with its own transport); all are closed at the end of the test."""
    made: list[RegistryClient] = []

    def factory(*, config: RegistryConfig | None = None, credentials: DockerConfig | None = None,
                retry: RetryPolicy = FAST, timeout: float = 5.0, max_connections: int = 16,
                clock: Callable[[], float] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> RegistryClient:
        transport = Transport(error=ResolveError, retry=retry, timeout=timeout, max_connections=max_connections,
                              sleep=sleep)
        client = RegistryClient(config=config, transport=transport, credentials=credentials,
                                clock=clock or time.monotonic)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.transport.close()
