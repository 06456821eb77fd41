"""``skopeo`` (Debian) as the independent cross-check of what a registry serves.

:func:`skopeo` runs it with an explicit minimal environment against a plain-HTTP loopback
registry; a test that needs it calls :func:`require_skopeo` first (skipped where it is not
installed, a failure in CI, which must install it).
"""

from __future__ import annotations

import shutil
import subprocess

from tests.needs import missing

SKOPEO = "skopeo"


def require_skopeo() -> None:
    if shutil.which(SKOPEO) is None:
        missing(f"{SKOPEO!r} is not installed (apt-get install -y skopeo)")


def skopeo(*args: str) -> bytes:
    """``skopeo inspect --tls-verify=false ARGS``'s stdout; an AssertionError with stderr on failure."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "TZ": "UTC", "LANG": "C.UTF-8"}
    done = subprocess.run([SKOPEO, "inspect", "--tls-verify=false", *args], capture_output=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, f"skopeo inspect {' '.join(args)} exited {done.returncode}: {done.stderr.decode()}"
    return done.stdout
