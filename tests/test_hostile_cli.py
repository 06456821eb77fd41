"""No traceback, no leak, one lock at a time (issue 17, items 3 and 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline import __main__ as cli
from pipeline._exclusive import exclusive
from pipeline.errors import UsageError
from pipeline.render.pool import remove_orphans

ROOT = Path(__file__).resolve().parents[1]


def test_an_unexpected_exception_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: object) -> int:
        raise ValueError("a bug\nover two lines")

    monkeypatch.setattr(cli, "cmd_recipes", boom)
    assert cli.main(["recipes"]) == 3
    err = capsys.readouterr().err
    assert err == ("internal error: ValueError: a bug over two lines\n"
                   "hint: run again with -v for the traceback, and report it\n")
    assert cli.main(["-v", "recipes"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_sigint_during_the_imports_exits_130_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "pipeline", "recipes"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    # Past interpreter start-up, still importing the CLI's modules: -X importtime reports each module
    # as it finishes, so the first one the CLI imports (after the package and its errors, which come
    # before the handler) says the imports are under way (a fixed sleep landed after them once
    # start-up got faster).
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "| pipeline." in line and "pipeline.errors" not in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    err = "".join(seen) + err
    assert proc.returncode in (130, 0)  # 0 only if the whole command finished before the signal
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    if proc.returncode == 130:
        assert err.splitlines()[-1] == "interrupted; nothing was written"


def test_a_second_lock_exits_2_at_once_naming_the_first(tmp_path: Path) -> None:
    marker = tmp_path / "lock.pid"
    with exclusive(marker, wait=False, what="lock"):
        child = subprocess.run(
            [sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--cache", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert child.returncode == 2
    assert f"another lock is running (pid {os.getpid()})" in child.stderr
    assert "hint: wait for it to finish, or pass --wait to queue behind it" in child.stderr
    assert "Traceback" not in child.stderr


def test_exclusive_refuses_in_process_too(tmp_path: Path) -> None:
    with (exclusive(tmp_path / "lock.pid", wait=False, what="lock"), pytest.raises(UsageError) as info,
          exclusive(tmp_path / "lock.pid", wait=False, what="lock")):
        pass
    assert info.value.message == f"another lock is running (pid {os.getpid()})"
    with exclusive(tmp_path / "lock.pid", wait=False, what="lock"):  # released: free again
        pass


def test_render_dirs_of_a_dead_run_are_removed_at_the_next_start(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    orphan = tmp_path / f"pipeline-render-A-{dead}-x1y2"
    (orphan / "home").mkdir(parents=True)
    mine = tmp_path / f"pipeline-render-B-{os.getpid()}-z9"
    mine.mkdir()
    foreign = tmp_path / "pipeline-render-A-old"
    foreign.mkdir()
    assert remove_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and mine.exists() and foreign.exists()
    assert tempfile.gettempdir()  # the real sweep runs at every WorkerPool start
