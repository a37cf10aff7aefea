"""Packaged DeepSTARR run configs: ``<arch>/<preset>.yaml`` (transformer|conv × paper|cpu)."""
