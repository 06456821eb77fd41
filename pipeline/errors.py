"""The error hierarchy: one root, one subclass per stage.

Every error says what was wrong, where (file and line when known) and why; the fix goes in
``hint``, which the CLI prints on a line of its own. Library code raises; only the CLI maps an
error to an exit code (``exit_code``): 2 for bad input, 1 for a failed gate.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackendError",
    "ChartError",
    "ChartVersionError",
    "DiffError",
    "DiscoveryError",
    "DivergenceError",
    "GateError",
    "IntegrityError",
    "LockError",
    "PinError",
    "PipelineError",
    "RecipeError",
    "RenderError",
    "ResolveError",
    "SignatureError",
    "StaleLockError",
    "UpgradeError",
    "UsageError",
]


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose.

    ``exit_code`` is 2 (bad input or usage) unless a subclass is a failed gate (1).
    """

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(self.where() + message)

    def where(self) -> str:
        """``file:line: `` prefix, or ``''`` when no location is known."""
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "

    def diagnostics(self) -> str:
        """The full message with its hint, as the CLI prints it."""
        text = str(self)
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(PipelineError):
    """A command line that does not make sense (unknown recipe, missing option)."""


class RecipeError(PipelineError):
    """A catalog that cannot be loaded or composed: YAML, schema, chains, components, values."""


class ChartError(PipelineError):
    """A chart that cannot be fetched, is unsafe to unpack, or whose bytes differ from the lock."""


class ChartVersionError(ChartError):
    """The chart repository offers no version that Helm's rules match to the pin."""


class ChartsUnavailableError(ChartError):
    """Charts that could not be fetched or matched to their pins, every one of them, as one table
    (chart, version, repository, component, the file:line that pins it, recipes, problem)."""


class RenderError(PipelineError):
    """Helm's engine refused a chart or template (the message carries Helm's file:line)."""


class DiscoveryError(PipelineError):
    """A rendered document that image discovery cannot read, or an image field that is malformed
    beyond a placeholder (a Skyhook ``containerSHA`` that is not ``sha256:<64 hex>``)."""


class PinError(PipelineError):
    """The pinned render cannot write a locked digest where discovery found an image: no locked
    digest, an image the lock does not know (post-render), a custom-resource kind without a reviewed
    digest-field entry, or an unpinnable field without an exemption."""


class ResolveError(PipelineError):
    """A registry could not answer for an image or chart (after retries), or answered with bad bytes."""


class BackendError(PipelineError):
    """An execution backend that cannot run a stage: no engine reachable, an input changed under the
    plan, or outputs that are missing or differ from what the plan expected."""


class LockError(PipelineError):
    """A lockfile that cannot be read or written (missing, not JSON, wrong schema)."""


class DiffError(PipelineError):
    """Lock sets that cannot be compared: a revision or directory that does not exist, a lockfile on
    either side that does not parse or fails its integrity check (bad input for a review: exit 2)."""


class UpgradeError(PipelineError):
    """A pin that cannot be moved: unknown component, a version the repository does not offer, or a
    pin whose definition cannot be found or edited. Nothing is written."""


class GateError(PipelineError):
    """A check that ran and failed: the input was fine, the result is not. Exit code 1."""

    exit_code = 1


class IntegrityError(GateError):
    """A lockfile whose recorded digest does not match its body (edited by hand or corrupted)."""


class StaleLockError(GateError):
    """A lockfile whose inputs hash no longer matches the catalog: some input changed."""


class SignatureError(GateError):
    """An image whose declared signature, provenance or SBOM does not verify against the lock and the
    provenance matrix (tampered, another digest, another signer, or missing)."""


class DivergenceError(GateError):
    """Two renders, or a render and its lock, differ. ``report`` holds the full human report."""

    def __init__(self, message: str, *, report: str = "", hint: str | None = None) -> None:
        self.report = report
        super().__init__(message, hint=hint)
