"""Render worker process: ``python -m pipeline.render._worker``.

Started by :mod:`pipeline.render.pool` inside a sandbox (see :mod:`pipeline.render.sandbox`).
Protocol on stdin/stdout: length-prefixed pickled frames. The first frame out is a hello with the
facts of the sandbox as the worker sees them (network isolation, TZ, locale, umask, cwd). Each
frame in is a :class:`~pipeline.render.job.RenderJob`; each frame out is ``("ok", ComponentRender)``
or ``("error", exit_code, message, hint)``. A zero-length frame in means stop.

Argument ``--max-memory-mib N`` caps the worker's address space (``RLIMIT_AS``) before anything
else is loaded: a render past it fails to allocate (the Go runtime then exits with "out of memory";
Python raises ``MemoryError``, reported as the frame ``("error", 2, "MemoryError", None)``).

The worker first moves itself into a new, empty network namespace when the kernel allows it (a
render needs no network); otherwise it relies on dead proxies and says so in the hello.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import resource
import struct
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

_CLONE_NEWNET = 0x40000000


def _isolate_network() -> str:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) == 0:
            return "isolated (new network namespace, no interfaces up)"
        return f"not isolated (unshare: errno {ctypes.get_errno()}); proxies point at a closed port"
    except (OSError, AttributeError) as exc:
        return f"not isolated ({exc}); proxies point at a closed port"


def _read(stream: BinaryIO) -> bytes | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack(">Q", header)
    if size == 0:
        return None
    return stream.read(size)


def _write(stream: BinaryIO, payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


def _limit_memory(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--max-memory-mib":
        limit = int(argv[1]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    _limit_memory(sys.argv[1:])
    # Keep the protocol channel private: anything the engine prints goes to stderr.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inbox = sys.stdin.buffer
    network = _isolate_network()
    time.tzset()
    from ..errors import PipelineError
    from .job import run_job

    engine_name = os.environ.get("PIPELINE_ENGINE", "helm-python-sdk")
    if engine_name == "helm-cli":
        from .helm_cli import engine_facts
    else:
        from .engine import engine_facts

    umask = os.umask(0)
    os.umask(umask)
    _write(channel, {"network": network, "tz": os.environ.get("TZ", ""), "locale": os.environ.get("LC_ALL", ""),
                     "umask": f"{umask:04o}", "cwd": str(Path.cwd()), "pid": os.getpid(),
                     "engine": engine_facts()})
    while (frame := _read(inbox)) is not None:
        job = pickle.loads(frame)  # noqa: S301 - frames come from our own parent process over a pipe
        try:
            _write(channel, ("ok", run_job(job, engine_name)))
        except PipelineError as exc:
            _write(channel, ("error", exc.exit_code, exc.message, exc.hint))
        except MemoryError:
            _write(channel, ("error", 2, "MemoryError", None))
        except Exception as exc:  # report anything else to the parent, keep serving
            _write(channel, ("error", 2, f"{job.what}: render failed: {type(exc).__name__}: {exc}", None))
    with contextlib.suppress(OSError):
        channel.close()
    return 0


if __name__ == "__main__":
    code = main()
    # Nothing is left to write (every frame was flushed): skip the interpreter's and the Go runtime's
    # teardown, which the parent would otherwise wait for at the end of every run.
    sys.stderr.flush()
    os._exit(code)
