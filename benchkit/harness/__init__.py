"""The evaluation harness behind ``benchkit evaluate`` and ``benchkit publish``.

- :mod:`benchkit.harness.benchmark`: strict benchmark configs (``benchkit/benchmarks/<name>.yaml``) and
  building/loading their datasets;
- :mod:`benchkit.harness.evaluate`: runs methods (outputs cached per method tag and dataset
  fingerprint), scores them (per-image score cache), writes ``results.json`` + ``per_image.csv``;
- :mod:`benchkit.harness.publish`: leaderboards (CSV, Markdown, perception-distortion plot, meta).
"""
