"""Manifests the fixer tests share."""

BARE_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx:1.27
"""
"""A Pod that every hardening rule changes."""
