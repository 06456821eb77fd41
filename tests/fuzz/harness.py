"""``python -m tests.fuzz.harness TARGET [libFuzzer options]``: one target under atheris.

A crash (an exception outside :data:`tests.fuzz.targets.EXPECTED`) ends the run with a non-zero
exit and the input saved by libFuzzer (``crash-<sha1>`` in the working directory).
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]  # no stubs

with atheris.instrument_imports():
    from tests.fuzz.targets import EXPECTED, TARGETS


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except EXPECTED:
            return

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
