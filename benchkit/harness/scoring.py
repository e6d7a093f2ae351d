"""Scoring the outputs of a dataset with typed requests.

Per-image metrics: key by key, one :class:`~benchkit.metrics.base.ScoreRequest` per (method, key) is
built with lazily loaded images (the input and the target are read at most once per key, whatever the
number of methods and metrics); every metric scores the requests still missing from the cache in one
``score_requests`` call; a batch that fails is re-scored item by item so the failure is pinned to one
(method, metric, key). ``NA`` results are counted apart from failures.

Dataset-level metrics (FID, HMB-R): per-item states of the outputs are cached per image; the
reference side (FID: targets, HMB-R: inputs) does not depend on the method and is computed once per
dataset; the aggregate is over exactly the keys the method has outputs for.
"""

from __future__ import annotations

import math

from benchkit.errors import BadInputError, BenchkitError, UnavailableError
from benchkit.harness.results import fail
from benchkit.harness.scores import REFERENCE
from benchkit.metrics.base import NA, Metric, ScoreRequest


class _Once:
    """A zero-argument loader that reads its image once and remembers a BadInputError."""

    def __init__(self, path):
        self.path = path
        self._v = None
        self._err = None

    def __call__(self):
        if self._err is not None:
            raise self._err
        if self._v is None:
            from benchkit.images import read_image

            try:
                self._v = read_image(self.path)
            except BadInputError as e:
                self._err = e
                raise
        return self._v


def requests_for_key(ds, rec, runs) -> dict:
    """{method name: ScoreRequest} for every run with an output for ``rec`` (shared input/target loaders)."""
    key = rec["key"]
    inp = ds.input_path(rec)
    tgt = ds.target_path(rec)
    inp_l, tgt_l = _Once(inp), (_Once(tgt) if tgt is not None else None)
    aux, meta = ds.aux_paths(rec), ds.meta(rec)
    out = {}
    for run in runs:
        orec = run.outputs.get(key)
        if orec is None:
            continue
        op = run.dir / orec["path"]
        out[run.name] = ScoreRequest(key, output_src=_Once(op), input_src=inp_l, target_src=tgt_l, output_path=op,
                                     input_path=inp, target_path=tgt, aux=aux, meta=meta)
    return out


def score_dataset(ds, runs, slots, cache, counters, failures, progress=False) -> dict:
    """Per-image values {(method, key): {metric: value or NA}} for every ok run of ``ds``."""
    values = {}
    per_image = [s for s in slots if s.info.kind != "dataset"]
    recs = list(ds.records)
    if progress:
        from tqdm.auto import tqdm

        recs = tqdm(recs, desc=f"score {ds.name}", unit="img", leave=False)
    for rec in recs:
        key = rec["key"]
        todo = {}  # slot name -> [(run, orec)]
        for run in runs:
            orec = run.outputs.get(key)
            if orec is None:
                continue
            row = values.setdefault((run.name, key), {})
            for s in per_image:
                if not s.metric.applicable(ds.has_target):
                    row[s.name] = NA
                    counters.not_applicable += 1
                    continue
                v = cache.get(run.tag, ds.fingerprint, s.id, key, orec["sha256"])
                if v is not None:
                    row[s.name] = v
                    counters.scores_cached += 1
                elif s.available()[0]:
                    todo.setdefault(s.name, []).append((run, orec))
        if not todo:
            continue
        reqs = requests_for_key(ds, rec, [r for r in runs if any(r is x for items in todo.values()
                                                                    for x, _ in items)])
        for s in per_image:
            items = todo.get(s.name)
            if items and s.available()[0]:
                _score_items(s, items, reqs, ds, key, values, cache, counters, failures)
    return values


def _input_failure(e: BadInputError, ds, run, key, s) -> dict:
    return fail("input", f"cannot read {e.path}: {e.problem}", e.fix or "rebuild the dataset / re-run evaluate",
                dataset=ds.name, method=run.name, metric=s.name, key=key)


def _score_items(s, items, reqs, ds, key, values, cache, counters, failures) -> None:
    rq = [reqs[run.name] for run, _ in items]
    try:
        counters.metric_evaluations += len(items)
        vals = list(s.metric.score_requests(rq))
        if len(vals) != len(items):
            raise BenchkitError(f"{len(vals)} scores for {len(items)} images")
    except UnavailableError as e:
        s.mark_unavailable(str(e))
        return
    except Exception:
        vals = [None] * len(items)
    for (run, orec), req, v in zip(items, rq, vals):
        if v is None:  # the batch failed: score this item alone to get its own error
            try:
                v = s.metric.score_requests([req])[0]
            except UnavailableError as e:
                s.mark_unavailable(str(e))
                return
            except BadInputError as e:
                failures.append(_input_failure(e, ds, run, key, s))
                continue
            except Exception as e:
                failures.append(fail("metric", f"{type(e).__name__}: {e}", getattr(e, "fix", "") or "", exc=e,
                                     dataset=ds.name, method=run.name, metric=s.name, key=key))
                continue
        if v is NA:
            counters.not_applicable += 1
        elif not isinstance(v, (int, float)) or not math.isfinite(v):
            failures.append(fail("metric", f"score is {v}", "check the metric and the output image",
                                 dataset=ds.name, method=run.name, metric=s.name, key=key))
            continue
        else:
            v = float(v)
        values[(run.name, key)][s.name] = v
        cache.put(run.tag, ds.fingerprint, s.id, key, orec["sha256"], v)


def score_dataset_level(ds, runs, slots, cache, states, counters, failures, columns=None) -> dict:
    """{(method, metric): value or NA} for dataset-level metrics, from cached per-item states.

    ``columns`` (a dict, optional) receives ``{(method, key): {column: value}}`` from the metrics'
    ``item_columns(partial, reference_partial)`` (per-image detail of dataset-level metrics)."""
    from benchkit.config import fingerprint

    res = {}
    by_key = {r["key"]: r for r in ds.records}
    for s in [s for s in slots if s.info.kind == "dataset"]:
        if not s.metric.applicable(ds.has_target):
            for run in runs:
                res[(run.name, s.name)] = NA
                counters.not_applicable += 1
            continue
        ref_cache = {}  # key -> reference state, computed once per dataset for every method
        for run in runs:
            keys = sorted(run.outputs)
            ident = fingerprint(sorted((k, run.outputs[k]["sha256"]) for k in keys))
            v = cache.get(run.tag, ds.fingerprint, s.id, "__dataset__", ident)
            if v is not None:
                counters.scores_cached += 1
                res[(run.name, s.name)] = v
                if columns is not None:
                    _item_columns(s, ds, run, keys, states, columns)
                continue
            if not s.available()[0]:
                continue
            try:
                refs = _reference_states(s, ds, keys, by_key, states, ref_cache, counters)
                parts = _output_states(s, ds, run, keys, by_key, states, counters)
                v = float(s.metric.aggregate(parts, refs))
                if not math.isfinite(v):
                    raise BenchkitError(f"score is {v}")
            except UnavailableError as e:
                s.mark_unavailable(str(e))
                continue
            except Exception as e:
                failures.append(fail("metric", f"{type(e).__name__}: {e}", getattr(e, "fix", "") or "", exc=e,
                                     dataset=ds.name, method=run.name, metric=s.name))
                continue
            res[(run.name, s.name)] = v
            cache.put(run.tag, ds.fingerprint, s.id, "__dataset__", ident, v)
            if columns is not None:
                for k, p, r in zip(keys, parts, refs):
                    columns.setdefault((run.name, k), {}).update(s.metric.item_columns(p, r))
    return res


def _item_columns(s, ds, run, keys, states, columns) -> None:
    """Per-image columns of a dataset-level value read from the cache: from the stored states (no compute)."""
    if type(s.metric).item_columns is Metric.item_columns:
        return
    for k in keys:
        p = states.get(run.tag, ds.fingerprint, s.id, k, run.outputs[k]["sha256"])
        r = states.get(REFERENCE, ds.fingerprint, s.id, k)
        if p is not None and r is not None:
            columns.setdefault((run.name, k), {}).update(s.metric.item_columns(p, r))


def _reference_states(s, ds, keys, by_key, states, ref_cache, counters) -> list:
    missing = []
    for k in keys:
        if k in ref_cache:
            continue
        v = states.get(REFERENCE, ds.fingerprint, s.id, k)
        if v is None:
            missing.append(k)
        else:
            ref_cache[k] = v
    if missing:
        reqs = [_ref_request(ds, by_key[k]) for k in missing]
        vals = s.metric.reference_partials(reqs)
        counters.reference_evaluations += len(missing)
        for k, v in zip(missing, vals):
            states.put(v, REFERENCE, ds.fingerprint, s.id, k)
            ref_cache[k] = v
    return [ref_cache[k] for k in keys]


def _ref_request(ds, rec) -> ScoreRequest:
    inp, tgt = ds.input_path(rec), ds.target_path(rec)
    return ScoreRequest(rec["key"], input_src=_Once(inp), target_src=_Once(tgt) if tgt is not None else None,
                        input_path=inp, target_path=tgt, aux=ds.aux_paths(rec), meta=ds.meta(rec))


def _output_states(s, ds, run, keys, by_key, states, counters) -> list:
    got, missing = {}, []
    for k in keys:
        v = states.get(run.tag, ds.fingerprint, s.id, k, run.outputs[k]["sha256"])
        if v is None:
            missing.append(k)
        else:
            got[k] = v
    if missing:
        reqs = [requests_for_key(ds, by_key[k], [run])[run.name] for k in missing]
        vals = s.metric.partials(reqs)
        counters.metric_evaluations += len(missing)
        for k, v in zip(missing, vals):
            states.put(v, run.tag, ds.fingerprint, s.id, k, run.outputs[k]["sha256"])
            got[k] = v
    return [got[k] for k in keys]
