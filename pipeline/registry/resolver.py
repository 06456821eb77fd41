"""Resolve many image references at once: bounded parallelism, one answer per distinct reference.

Contract of :func:`resolve_all`:

- input: image references (any iterable, duplicates allowed) and a
  :class:`~pipeline.registry.interface.Resolver` shared by every worker (the
  :class:`~pipeline.registry.client.RegistryClient` holds one pooled HTTP client, so connections
  are reused across threads and their number is bounded by its transport);
- work: each distinct reference (by canonical string) is resolved exactly once, on a thread pool
  of at most ``max_workers`` threads;
- output: a dict mapping every input reference to its :class:`ResolvedImage`, in the order the
  references were first given;
- errors: every reference is attempted; when some fail, the first failure in input order is
  raised after all have finished (deterministic whatever the thread timing), with the other
  failures added as notes and logged; a resolver never returns a partial result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from ..vocabulary.reference import ImageRef
from .interface import ResolvedImage, Resolver

__all__ = ["resolve_all"]

_log = logging.getLogger(__name__)


def resolve_all(
    refs: Iterable[ImageRef],
    *,
    client: Resolver,
    max_workers: int = 16,
    progress: Callable[[ImageRef], None] | None = None,
) -> dict[ImageRef, ResolvedImage]:
    """Resolve every reference in ``refs`` (each distinct one once) with up to ``max_workers`` threads.

    ``progress`` is called (from worker threads) with each distinct reference once it is done.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    given = list(refs)
    unique: dict[str, ImageRef] = {}
    for ref in given:
        unique.setdefault(str(ref), ref)
    if not unique:
        return {}

    def work(ref: ImageRef) -> ResolvedImage:
        try:
            return client.resolve(ref)
        finally:
            if progress is not None:
                progress(ref)

    futures: dict[str, Future[ResolvedImage]] = {}
    with ThreadPoolExecutor(max_workers=min(max_workers, len(unique)), thread_name_prefix="resolve") as pool:
        for key, ref in unique.items():
            futures[key] = pool.submit(work, ref)
    failures: list[tuple[str, BaseException]] = []
    results: dict[str, ResolvedImage] = {}
    for key, future in futures.items():
        exc = future.exception()
        if exc is None:
            results[key] = future.result()
        else:
            failures.append((key, exc))
    if failures:
        first = failures[0][1]
        for key, exc in failures:
            _log.error("cannot resolve %s: %s", key, exc)
        if len(failures) > 1:
            first.add_note(f"{len(failures) - 1} more image(s) failed too: "
                           + "; ".join(f"{key}: {exc}" for key, exc in failures[1:6])
                           + (" …" if len(failures) > 6 else ""))
        raise first
    return {ref: results[str(ref)] for ref in given}
