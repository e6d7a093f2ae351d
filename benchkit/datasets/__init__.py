"""The datasets service: open a dataset (built folder or plain image folder) with its roles, make a
builder, export. The harness and the commands use this package; it never imports ``benchkit.commands``.

Modules: :mod:`.roles` (output roles), :mod:`.open` (open built or plain folders),
:mod:`.build` (make_builder, build a benchmark dataset), :mod:`.export` (HF export).
"""
