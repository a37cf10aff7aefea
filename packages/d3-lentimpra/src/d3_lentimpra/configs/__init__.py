"""Packaged lentiMPRA run configs: ``<arch>/<preset>.yaml`` (transformer|conv × paper|cpu)."""
