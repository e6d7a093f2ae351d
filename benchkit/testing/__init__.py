"""Contract suites and structural checks that run over every registry entry (used by tests/).

- :mod:`.imports`: the import graph (function-level imports included) and the layering rule;
- :mod:`.contracts`: what every generator, method, metric and builder must satisfy;
- :mod:`.tolerances`: the one table of numeric tolerances the suites use.
"""
