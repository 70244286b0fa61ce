"""hardener: harden Kubernetes pods automatically."""

__version__ = "0.1.0.dev0"
