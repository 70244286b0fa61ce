"""``hardener fix``: harden manifest files in place, changing only the lines a change needs.

Submodules are imported on use, never from here, so that each stays importable on its own:

- ``run``: ``fix_file``/``fix_text`` and ``check_file``/``check_text`` for one file, and
  ``run_files`` for many (in worker processes, results in input order);
- ``files``: which files a run covers (and which it leaves out, why), strict UTF-8 reading,
  atomic replacement that keeps mode, owner and attributes, stale temporary files;
- ``ignores``: tool folders and what git ignores, read without running git;
- ``fastload``: the libyaml reader that decides "no change" quickly; ``_load`` the full reader
  (a node tree with offsets); ``_reading`` what the two share;
- ``documents``: which documents are worked on (Kubernetes objects, not Kustomize patches);
- ``source`` (with ``yamledit``): the parsed file and the surgical text edits (``yamledit``
  with ``_route``, ``_layout``, ``_spans`` and ``_emit``);
- ``output``: result lines, summaries and the progress bar for people;
- ``stream``: a rendered stream from another tool (``hardener post-render``), checked whole;
- ``resourcelist``: a KRM function's ``ResourceList`` (``hardener krm``);
- ``kustomize``: the operations as a Kustomize Component (``fix --emit-kustomize``).
"""
