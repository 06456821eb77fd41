"""The pinning gates, in three layers (from the real catalog's own rules).

1. :class:`ChartVersionsPinned` — every chart version pinned exactly; overlay pins that differ
   from the registry need a recorded exemption.
2. :class:`InTreeDigestsPinned` — every image the catalog controls in-tree carries ``@sha256:``,
   or a recorded exemption with a reason and a tracking link.
3. :class:`ChartDefaultImagesLocked` — every image in a lock is locked to a digest.

:func:`run_gates` runs them and returns :class:`Finding` records (file, line, message, hint).
"""

from .digests import InTreeDigestsPinned
from .exemptions import EXEMPTIONS_FILE, Exemptions, ImageExemption, VersionExemption, load_exemptions
from .interface import Finding, Gate, GateInput, GateName, sort_findings
from .locked import ChartDefaultImagesLocked, ghost_finding
from .pinning import ChartVersionsPinned, version_problem
from .run import findings_error, run_gates

__all__ = [
    "EXEMPTIONS_FILE",
    "ChartDefaultImagesLocked",
    "ChartVersionsPinned",
    "Exemptions",
    "Finding",
    "Gate",
    "GateInput",
    "GateName",
    "ImageExemption",
    "InTreeDigestsPinned",
    "VersionExemption",
    "findings_error",
    "ghost_finding",
    "load_exemptions",
    "run_gates",
    "sort_findings",
    "version_problem",
]
