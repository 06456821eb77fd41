"""A pool of sandboxed render worker processes for one :class:`~pipeline.render.sandbox.Variation`.

The pool's engine is the in-process Helm SDK (default) or ``helm-cli`` (the pinned helm binary,
checked against ``tools/go/tools.json`` when the pool opens, run by the workers inside their sandbox).

Each worker is a fresh interpreter started with an allow-listed environment, its own temporary
HOME and working directory, the variation's umask, and (where the kernel allows) no network. Jobs
are deduplicated by content key, so a run never renders the same content twice; distinct jobs are
spread over the workers (one feeding thread per worker, one job in flight per worker).
"""

from __future__ import annotations

import os
import pickle
import queue
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import PipelineError, RenderError, UsageError
from ..vocabulary.digest import Digest
from .identity import ENGINE_NAME, ENGINES, HELM_CLI, helm_binary
from .job import ComponentRender, RenderJob
from .sandbox import Variation, python_executable, sandbox_environment

__all__ = ["WorkerPool", "default_workers"]


def default_workers() -> int:
    """One worker per available CPU (the engine is CPU-bound and not thread-safe)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class _Worker:
    def __init__(self, variation: Variation, root: Path, engine_env: Mapping[str, str]) -> None:
        self.root = root
        env = {**sandbox_environment(variation, root), **engine_env}
        self.stderr_path = root / "stderr.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [python_executable(), "-m", "pipeline.render._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, cwd=root / variation.workdir_name, umask=variation.umask, close_fds=True,
        )
        self.hello: dict[str, Any] = {}

    def wait_ready(self) -> None:
        """Read the worker's hello (it has loaded the engine and isolated itself)."""
        self.hello = self._receive()

    def _receive(self) -> Any:
        assert self.proc.stdout is not None
        header = self.proc.stdout.read(8)
        if len(header) < 8:
            raise self._crashed()
        (size,) = struct.unpack(">Q", header)
        data = self.proc.stdout.read(size)
        if len(data) < size:
            raise self._crashed()
        return pickle.loads(data)  # noqa: S301 - our own child process

    def _crashed(self) -> RenderError:
        self.proc.wait(timeout=10)
        self._stderr.flush()
        tail = self.stderr_path.read_bytes()[-2000:].decode(errors="replace").strip()
        return RenderError(f"render worker exited with code {self.proc.returncode}: {tail or 'no output'}",
                           hint="this is a bug or a broken engine install; re-create the environment (nox -r)")

    def _send(self, stream: IO[bytes], data: bytes) -> None:
        stream.write(struct.pack(">Q", len(data)) + data)
        stream.flush()

    def run(self, job: RenderJob) -> ComponentRender:
        assert self.proc.stdin is not None
        try:
            self._send(self.proc.stdin, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError as exc:
            raise self._crashed() from exc
        reply = self._receive()
        if reply[0] == "ok":
            result: ComponentRender = reply[1]
            return result
        _, exit_code, message, hint = reply
        error = RenderError(message, hint=hint)
        error.exit_code = exit_code
        raise error

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self._send(self.proc.stdin, b"")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


_PREFIX = "pipeline-render-"


def remove_orphans(tmp: Path | None = None) -> list[Path]:
    """Remove ``pipeline-render-<variation>-<pid>-*`` directories whose owning process is dead.

    A run killed with SIGKILL cannot clean up after itself; the next run does. Returns what it removed.
    """
    removed: list[Path] = []
    for path in Path(tmp or tempfile.gettempdir()).glob(f"{_PREFIX}*-*-*"):
        parts = path.name[len(_PREFIX):].split("-")
        if len(parts) < 3 or not parts[1].isdigit() or not path.is_dir() or _alive(int(parts[1])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class WorkerPool:
    """Sandboxed worker processes for one variation; use as a context manager."""

    def __init__(self, variation: Variation, *, workers: int | None = None, engine: str = ENGINE_NAME) -> None:
        if engine not in ENGINES:
            raise UsageError(f"unknown render engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
        self.variation = variation
        self.engine = engine
        self._engine_env: dict[str, str] = {}
        self.max_workers = workers or default_workers()
        self._workers: list[_Worker] = []
        self._root: Path | None = None
        self.rendered = 0

    def __enter__(self) -> WorkerPool:
        if self.engine == HELM_CLI:
            # The binary's sha256 is checked against tools/go/tools.json before any worker uses it.
            self._engine_env = {"PIPELINE_ENGINE": HELM_CLI, "PIPELINE_HELM": str(helm_binary())}
        remove_orphans()
        self._root = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{self.variation.name}-{os.getpid()}-"))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for worker in self._workers:
            worker.close()
        self._workers.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    @property
    def hellos(self) -> list[dict[str, Any]]:
        """What each started worker reported about its sandbox (waiting for any still starting)."""
        self._wait_ready()
        return [w.hello for w in self._workers]

    def _wait_ready(self) -> None:
        for worker in self._workers:
            if not worker.hello:
                worker.wait_ready()

    def spawn(self, count: int | None = None) -> None:
        """Start up to ``count`` (default: the maximum) workers now, without waiting for them.

        Interpreter start and engine load then overlap with whatever the caller does next (the
        other variation's renders, say); :meth:`render` waits for them to be ready.
        """
        assert self._root is not None, "use WorkerPool as a context manager"
        wanted = min(count if count is not None else self.max_workers, self.max_workers)
        while len(self._workers) < wanted:
            self._workers.append(_Worker(self.variation, self._root / f"w{len(self._workers)}", self._engine_env))

    def _ensure(self, count: int) -> None:
        self.spawn(count)
        self._wait_ready()  # all interpreters started at once; now wait for each to be ready

    def render(self, jobs: Sequence[RenderJob] | Mapping[Digest, RenderJob], *,
               advance: Callable[[], None] | None = None) -> dict[Digest, ComponentRender]:
        """Render every distinct job once; results keyed by :meth:`RenderJob.key`.

        Pass a mapping of already computed keys to jobs to avoid hashing them again. The first
        failure (in key order of first appearance) is raised after all workers are idle. ``advance``
        is called once per finished job (from the feeding threads).
        """
        unique: dict[Digest, RenderJob] = {}
        if isinstance(jobs, Mapping):
            unique.update(jobs)
        else:
            for job in jobs:
                unique.setdefault(job.key(), job)
        if not unique:
            return {}
        self._ensure(len(unique))
        pending: queue.Queue[tuple[Digest, RenderJob]] = queue.Queue()
        for item in unique.items():
            pending.put(item)
        results: dict[Digest, ComponentRender] = {}
        errors: dict[Digest, PipelineError] = {}
        lock = threading.Lock()

        def feed(worker: _Worker) -> None:
            while True:
                try:
                    key, job = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    out = worker.run(job)
                except PipelineError as exc:
                    with lock:
                        errors[key] = exc
                    if worker.proc.poll() is not None:
                        return
                    continue
                with lock:
                    results[key] = out
                if advance is not None:
                    advance()

        threads = [threading.Thread(target=feed, args=(w,), daemon=True) for w in self._workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.rendered += len(results)
        for key in unique:
            if key in errors:
                raise errors[key]
        missing = [unique[k].what for k in unique if k not in results]
        if missing:
            raise RenderError(f"render workers stopped before rendering: {', '.join(missing)}")
        return results
