"""Packaged Promoter configs: ``<arch>/<preset>.yaml``, arch transformer|conv, preset paper|cpu."""
