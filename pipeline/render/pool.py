"""A pool of sandboxed render worker processes for one :class:`~pipeline.render.sandbox.Variation`.

The pool's engine is the in-process Helm SDK (default) or ``helm-cli`` (the pinned helm binary,
checked against ``tools/go/tools.json`` when the pool opens, run by the workers inside their sandbox).

Each worker is a fresh interpreter started with an allow-listed environment, its own temporary
HOME and working directory, the variation's umask, and (where the kernel allows) no network. Jobs
are deduplicated by content key, so a run never renders the same content twice; distinct jobs are
spread over the workers (one feeding thread per worker, one job in flight per worker).

Resource limits (``limits.render`` in the catalog's ``pipeline.yaml``): each worker's address space
is capped (``RLIMIT_AS``, set by the worker before it loads the engine), and the parent stops a
worker whose job runs past the wall-clock limit (a watchdog timer kills it). Either way the job
fails with a :class:`~pipeline.errors.RenderError` (exit 2) naming the component and, as far as
the job tells, the templates that were running; the stopped worker is reaped, so no process is
left behind.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import queue
import shutil
import struct
import subprocess
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import PipelineError, RenderError, UsageError
from ..vocabulary.digest import Digest
from .identity import ENGINE_NAME, ENGINES, HELM_CLI, helm_binary
from .job import ComponentRender, RenderJob
from .sandbox import Variation, python_executable, sandbox_environment

__all__ = ["DEFAULT_MAX_MEMORY_MIB", "DEFAULT_MAX_SECONDS", "WorkerPool", "default_workers"]

#: Wall-clock seconds one component's render may take (ours take well under a second).
DEFAULT_MAX_SECONDS = 60.0
#: Address space of one worker in MiB: the embedded Go engine alone reserves about 1.8 GiB of
#: address space at start (resident: about 80 MiB), so this leaves about 2 GiB for a render.
DEFAULT_MAX_MEMORY_MIB = 4096
_LIMIT_HINT = ("a template loops or builds a huge value (a runaway 'range'/'until', 'repeat', doubling a "
               "string): fix the chart or the values that drive it; if a genuine render needs more, raise "
               "'spec: limits: render: {key}:' in the catalog's pipeline.yaml")


def default_workers() -> int:
    """One worker per available CPU (the engine is CPU-bound and not thread-safe)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _templates(job: RenderJob) -> list[str]:
    """The template files a job renders (in-tree paths, then the chart's), for messages."""
    names = [path for path, _ in (*job.pre_manifests, *job.manifests)]
    if job.chart is not None:
        with contextlib.suppress(OSError, EOFError, zlib.error, tarfile.TarError), \
                tarfile.open(fileobj=io.BytesIO(gzip.decompress(job.chart)), mode="r:") as tar:
            names += sorted(m.name for m in tar.getmembers()
                            if m.isfile() and "/templates/" in f"/{m.name}" and not m.name.endswith(".txt"))
    return names


def _which(job: RenderJob) -> str:
    names = _templates(job)
    if len(names) == 1:
        return f"in template {names[0]}"
    if not names:
        return "(no template listed)"
    shown = ", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else "")
    return f"in one of its templates (the engine does not say which): {shown}"


class _Worker:
    def __init__(self, variation: Variation, root: Path, engine_env: Mapping[str, str], *,
                 max_seconds: float = DEFAULT_MAX_SECONDS, max_memory_mib: int = DEFAULT_MAX_MEMORY_MIB) -> None:
        self.root = root
        self.max_seconds = max_seconds
        self.max_memory_mib = max_memory_mib
        self.timed_out = False
        self.out_of_memory = False
        env = {**sandbox_environment(variation, root), **engine_env}
        self.stderr_path = root / "stderr.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [python_executable(), "-m", "pipeline.render._worker", "--max-memory-mib", str(max_memory_mib)],
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
        with self.stderr_path.open("rb") as stream:
            head = stream.read(4096)
        self.out_of_memory = b"out of memory" in head or b"MemoryError" in head
        tail = self.stderr_path.read_bytes()[-2000:].decode(errors="replace").strip()
        return RenderError(f"render worker exited with code {self.proc.returncode}: {tail or 'no output'}",
                           hint="this is a bug or a broken engine install; re-create the environment (nox -r)")

    def _send(self, stream: IO[bytes], data: bytes) -> None:
        stream.write(struct.pack(">Q", len(data)) + data)
        stream.flush()

    def _stop_runaway(self) -> None:
        self.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def _limit_error(self, job: RenderJob, crash: RenderError) -> RenderError:
        """The error for a job whose worker died: a limit (named) when one was hit, else ``crash``."""
        if self.timed_out:
            return RenderError(
                f"{job.what}: the render did not finish within {self.max_seconds:g} s "
                f"(limits.render.maxSeconds) {_which(job)}; the worker was stopped",
                hint=_LIMIT_HINT.format(key="maxSeconds"))
        if self.out_of_memory or crash.message == "MemoryError":
            return RenderError(
                f"{job.what}: the render needed more than {self.max_memory_mib} MiB of memory "
                f"(limits.render.maxMemoryMiB) {_which(job)}; the worker was stopped",
                hint=_LIMIT_HINT.format(key="maxMemoryMiB"))
        return crash

    def run(self, job: RenderJob) -> ComponentRender:
        assert self.proc.stdin is not None
        watchdog = threading.Timer(self.max_seconds, self._stop_runaway)
        watchdog.daemon = True
        try:
            try:
                self._send(self.proc.stdin, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            except BrokenPipeError as exc:
                raise self._crashed() from exc
            watchdog.start()
            reply = self._receive()
        except RenderError as exc:
            raise self._limit_error(job, exc) from None
        finally:
            watchdog.cancel()
        if reply[0] == "ok":
            result: ComponentRender = reply[1]
            return result
        _, exit_code, message, hint = reply
        if message == "MemoryError":
            raise self._limit_error(job, RenderError(message))
        error = RenderError(message, hint=hint)
        error.exit_code = exit_code
        raise error

    def stop(self) -> None:
        """Ask the worker to exit (an empty job, then end of input), without waiting for it."""
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self._send(self.proc.stdin, b"")
                self.proc.stdin.close()
            except BrokenPipeError:
                self.proc.kill()

    def close(self) -> None:
        self.stop()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc.wait()  # reaped, whatever happened: no zombie, no process left behind
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
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

    def __init__(self, variation: Variation, *, workers: int | None = None, engine: str = ENGINE_NAME,
                 max_seconds: float = DEFAULT_MAX_SECONDS, max_memory_mib: int = DEFAULT_MAX_MEMORY_MIB) -> None:
        if engine not in ENGINES:
            raise UsageError(f"unknown render engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
        if max_seconds <= 0 or max_memory_mib <= 0:
            raise ValueError("render limits must be positive")
        self.variation = variation
        self.engine = engine
        self._engine_env: dict[str, str] = {}
        self.max_workers = workers or default_workers()
        self.max_seconds = max_seconds
        self.max_memory_mib = max_memory_mib
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
        for worker in self._workers:  # every worker told first: they exit together, not one after another
            worker.stop()
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
            self._workers.append(_Worker(self.variation, self._root / f"w{len(self._workers)}", self._engine_env,
                                         max_seconds=self.max_seconds, max_memory_mib=self.max_memory_mib))

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
