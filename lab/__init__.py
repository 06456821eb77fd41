"""The lab: our catalog's deterministic image builder and the local registry that serves its images.

Not part of the product (``pipeline/`` never imports it; an import-linter contract keeps it so):
the noxfile (``python -m lab start|fill|status|stop|run``) and the tests use it to give the
pipeline real registries on 127.0.0.1 with byte-for-byte reproducible images.

- :mod:`lab.images`: ``recipes/images.yaml`` → OCI images (index, manifests, config, layer), built
  deterministically and pushed through the distribution API;
- :mod:`lab.registry`: the Debian ``docker-registry`` process on loopback, started, filled,
  reused and stopped;
- ``python -m lab``: the command line over both.
"""
