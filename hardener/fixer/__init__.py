"""``hardener fix``: harden manifest files in place, changing only the lines a change needs.

Submodules are imported on use, never from here, so that each stays importable on its own.
"""
