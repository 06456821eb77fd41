"""Air-gap bundles: every locked chart and image by digest, with signatures, in an OCI image layout.

Three entry points, one per command: :func:`export_bundle` (``bundle export``: fresh locks +
registries → a layout directory or ``.tar``), :func:`verify_bundle` (``bundle verify``: every blob,
every lock entry, every signature still attached) and :func:`import_bundle` (``bundle import``: push
into a registry behind the gap, every byte hashed before it is sent; then :func:`mirrors_yaml` and
:func:`hosts_files` say how to pull from it). Layout on disk: :mod:`pipeline.bundle.layout`; names
and annotations: :mod:`pipeline.bundle.interface`.
"""

from .export import ExportResult, collect_files, export_bundle
from .interface import BundleError, BundleInvalid, EntryKind, Problem
from .relocate import ImportResult, hosts_files, import_bundle, mirrors_yaml
from .trust import sigstore_trust_files
from .verify import VerifyReport, verify_bundle

__all__ = [
    "BundleError",
    "BundleInvalid",
    "EntryKind",
    "ExportResult",
    "ImportResult",
    "Problem",
    "VerifyReport",
    "collect_files",
    "export_bundle",
    "hosts_files",
    "import_bundle",
    "mirrors_yaml",
    "sigstore_trust_files",
    "verify_bundle",
]
