"""Packaged MPRA run configs: ``<arch>/<preset>.yaml`` (transformer|conv × paper|cpu)."""
