"""Rewrite the README's performance section from ``benchkit bench`` JSON lines (never by hand).

Usage::

    for b in degrade psf blur harness gopro evaluate-scale; do benchkit bench $b | tail -n 1 >> bench.jsonl; done
    BENCHKIT_BENCH_RESUME_10K=1 benchkit bench resume | tail -n 1 >> bench.jsonl
    python -m benchkit.bench.readme bench.jsonl [--readme README.md]

Each line of the input is the last line a ``benchkit bench NAME`` run printed (a JSON object with
``bench``, ``date`` and ``machine``); for a bench given more than once the last line wins. The text
between ``<!-- perf:begin -->`` and ``<!-- perf:end -->`` in the README is replaced (written to a
temporary name, then renamed); everything else is left alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BEGIN = "<!-- perf:begin -->"
END = "<!-- perf:end -->"


def _f(v, nd=2) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _machine_line(m: dict) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in sorted((m.get("libraries") or {}).items()))
    return (f"{m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} cores ({m.get('cpus_usable', '?')} usable), "
            f"Python {m.get('python', '?')}, {libs}")


def _same_machine_key(m) -> str:
    return json.dumps({k: v for k, v in (m or {}).items() if k != "loadavg_1_5_15"}, sort_keys=True)


def _degrade(r: dict) -> list[str]:
    out = [f"- `degrade` ({r.get('n_images')} PNGs of {r.get('size')}x{r.get('size')}, best of {r.get('repeats')}):",
           (f"  - `benchkit degrade --workers 1` process: wall {_f(r.get('benchkit_process_s'))} s, "
           f"CPU {_f(r.get('benchkit_process_cpu_s'))} s.")]
    if "basicsr_process_s" in r:
        out += [(f"  - BasicSR CPU-block loop process: wall {_f(r.get('basicsr_process_s'))} s, "
                f"CPU {_f(r.get('basicsr_process_cpu_s'))} s."),
                (f"  - BasicSR / benchkit: **{_f(r.get('cpu_ratio_basicsr_vs_benchkit'))}x in CPU time**, "
                f"{_f(r.get('speedup_vs_basicsr_process'))}x wall (target >= {_f(r.get('target_cpu_ratio'), 0)}x both); "
                f"two-order degradation alone {_f(r.get('speedup_degradation_only'))}x.")]
        if "cpu_budget_ms_per_img_for_target" in r:
            out.append(f"  - CPU budget per image for {_f(r.get('target_cpu_ratio'), 0)}x after benchkit's PNG decode + "
                       f"encode ({_f(r.get('ms_png_decode', 0) + r.get('ms_png_encode_gt_lq', 0), 1)} ms): "
                       f"{_f(r.get('cpu_budget_ms_per_img_for_target'), 1)} ms for USM + degradation, which take "
                       f"{_f(r.get('benchkit_compute_ms_per_img'), 1)} ms.")
    else:
        out.append("  - BasicSR not installed in that run: no reference figures.")
    if "previous_version" in r:
        out.append(f"  - generator v{r.get('generator_version')} (new builds) against v{r.get('previous_version')} on the same "
                   f"images and params: {_f(r.get('version_cpu_ms_per_img'), 1)} vs "
                   f"{_f(r.get('previous_version_cpu_ms_per_img'), 1)} ms CPU per image in-process; gt max |diff| "
                   f"{r.get('version_gt_max_abs')} level(s), PSNR >= {_f(r.get('version_gt_psnr_db'), 1)} dB; lq max |diff| "
                   f"{r.get('version_lq_max_abs')} levels, PSNR >= {_f(r.get('version_lq_psnr_db'), 1)} dB, mean "
                   f"{_f(r.get('version_lq_mean_abs'), 3)} levels.")
    cuda = r.get("cuda")
    if isinstance(cuda, dict):
        from .degrade_cuda import summary_lines

        out += ["  - " + line.strip() for line in summary_lines(cuda)]
    elif cuda:
        out.append(f"  - CUDA: {cuda}.")
    if "cpu_path_cpu_ms_per_img" in r:
        out.append(f"  - in-process per image: CPU path {_f(r.get('cpu_path_cpu_ms_per_img'), 1)} ms CPU; "
                   f"`apply_batch` on CPU tensors {_f(r.get('torch_path_cpu_ms_per_img'), 1)} ms CPU; batched torch "
                   f"kernels on this CPU {_f(r.get('torch_kernels_on_cpu_cpu_ms_per_img'), 1)} ms CPU.")
    return out


def _psf(r: dict) -> list[str]:
    return [(f"- `psf`: reference call (4 PSFs) {_f(r.get('reference_ms_per_call'), 1)} ms wall / "
            f"{_f(r.get('reference_cpu_ms_per_call'), 1)} ms CPU; benchkit (batches of {r.get('batch')}) "
            f"{_f(r.get('benchkit_ms_per_psf'), 3)} ms wall / {_f(r.get('benchkit_cpu_ms_per_psf'), 3)} ms CPU per "
            f"trajectory + PSF: **{_f(r.get('speedup_per_psf'), 0)}x wall, {_f(r.get('cpu_speedup_per_psf'), 0)}x CPU** "
            f"per PSF; like for like (4 PSFs) {_f(r.get('speedup_4psf'), 0)}x wall, "
            f"{_f(r.get('cpu_speedup_4psf'), 0)}x CPU (targets 300x / 150x).")]


def _blur(r: dict) -> list[str]:
    return [(f"- `blur` ({r.get('size')}x{r.get('size')} RGB, {r.get('kernel')}x{r.get('kernel')} PSF, median of "
            f"{r.get('repeats')}), ms per image wall / CPU:"),
            f"  - numpy `fft_blur` (reflect): {_f(r.get('numpy_ms_per_image'), 1)} / {_f(r.get('numpy_cpu_ms_per_image'), 1)};",
            (f"  - torch `fft_blur_torch`, batch {r.get('batch')} (CPU tensors: the numpy code per image): "
            f"{_f(r.get('torch_ms_per_image_batched'), 1)} / {_f(r.get('torch_cpu_ms_per_image_batched'), 1)}; its "
            f"batched torch.fft kernels on this CPU: {_f(r.get('torch_kernels_ms_per_image'), 1)} / "
            f"{_f(r.get('torch_kernels_cpu_ms_per_image'), 1)};"),
            (f"  - `scipy.signal.fftconvolve` (zero boundary): {_f(r.get('fftconvolve_ms_per_image'), 1)} / "
            f"{_f(r.get('fftconvolve_cpu_ms_per_image'), 1)} (fftconvolve / fft_blur: "
            f"{_f(r.get('ratio_fftconvolve_vs_numpy'))}x wall, {_f(r.get('cpu_ratio_fftconvolve_vs_numpy'))}x CPU).")]


def _harness(r: dict) -> list[str]:
    return [(f"- `harness` (demo benchmark: {r.get('image_pairs')} outputs, {r.get('pairs_with_target', '?')} with a target; "
            f"metrics {', '.join(r.get('metrics') or [])}): harness / plain pyiqa "
            f"loop **{_f(r.get('ratio_harness_vs_plain'), 3)}x wall**, {_f(r.get('cpu_ratio_harness_vs_plain'), 3)}x CPU "
            f"(target <= 1.05x); cached re-run {100 * (r.get('cached_fraction') or 0):.2f}% of the first run wall, "
            f"{100 * (r.get('cached_cpu_fraction') or 0):.2f}% CPU (target <= 2%).")]


def _gopro(r: dict) -> list[str]:
    return [(f"- `gopro`: build at {_f(r.get('ratio_build_vs_floor'))}x the pure decode+encode rate wall, "
            f"{_f(r.get('cpu_ratio_build_vs_floor'))}x in CPU time (target >= 0.7x); peak traced memory "
            f"{_f(r.get('peak_traced_mb'), 0)} MB.")]


def _by_size(r: dict, head: str, row, growth) -> list[str]:
    """``head``, one line per entry of ``r['sizes']`` (smallest first) and the ``r['growth']`` line if any."""
    sizes = sorted((r.get("sizes") or {}).values(), key=lambda x: x.get("samples", 0))
    g = r.get("growth")
    return [head] + [row(z) for z in sizes] + ([growth(g)] if g else [])


def _evalscale(r: dict) -> list[str]:
    return _by_size(
        r, f"- `evaluate-scale` (`evaluate` of `identity` + `psnr` on {r.get('image_size')}x{r.get('image_size')} "
           f"samples), us per image wall / CPU:",
        lambda z: (f"  - {z.get('samples')} images: first run {_f(z.get('first_us_per_image'), 0)} / "
                   f"{_f(z.get('first_cpu_us_per_image'), 0)}, cached re-run {_f(z.get('cached_us_per_image'), 0)} / "
                   f"{_f(z.get('cached_cpu_us_per_image'), 0)} ({100 * (z.get('cached_fraction') or 0):.1f}% of the "
                   f"first run's wall time);"),
        lambda g: (f"  - per image at x{_f(g.get('samples'), 0)} images: **first run x{_f(g.get('first_us_per_image'))} "
                   f"wall, x{_f(g.get('first_cpu_us_per_image'))} CPU; cached re-run x{_f(g.get('cached_us_per_image'))} "
                   f"wall, x{_f(g.get('cached_cpu_us_per_image'))} CPU** (target ~1, <= {_f(r.get('target_growth_max'))})."))


def _resume(r: dict) -> list[str]:
    return _by_size(
        r, "- `resume` (`benchkit degrade` of 64x64 PNGs with `realesrgan_x1`, then the same command on the finished "
           "folder), wall / CPU:",
        lambda z: (f"  - {z.get('samples')} samples: build {_f(z.get('build_wall_s'))} / {_f(z.get('build_cpu_s'))} s, "
                   f"resume {_f(z.get('resume_wall_s'), 3)} / {_f(z.get('resume_cpu_s'), 3)} s "
                   f"(**{100 * (z.get('resume_over_build') or 0):.1f}% of the build** wall, target < 5%; "
                   f"{_f(z.get('resume_us_per_sample'), 0)} us per sample); manifest "
                   f"{(z.get('manifest_bytes') or 0) / 1e6:.1f} MB;"),
        lambda g: (f"  - x{_f(g.get('samples'), 0)} samples: resume wall x{_f(g.get('resume_wall'))}, manifest "
                   f"x{_f(g.get('manifest_bytes'))} (target: resume growth <= manifest growth)."))


def _generic(name: str, r: dict) -> list[str]:
    return [f"- `{name}`: " + ", ".join(f"{k} {v}" for k, v in sorted(r.items()) if isinstance(v, (int, float)))]


RENDER = {"degrade": _degrade, "psf": _psf, "blur": _blur, "harness": _harness, "gopro": _gopro,
          "evaluate-scale": _evalscale, "resume": _resume}
ORDER = ("degrade", "psf", "blur", "gopro", "harness", "resume")


def load_results(path) -> dict:
    """{bench name: its last JSON object} from a file of JSON lines (other lines are skipped)."""
    res = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "bench" in obj:
            res[obj["bench"]] = obj
    return res


def render(results: dict) -> str:
    """The markdown of the section (without the markers)."""
    if not results:
        raise ValueError("no bench results (lines with a JSON object holding 'bench')")
    names = [n for n in ORDER if n in results] + sorted(set(results) - set(ORDER))
    machines = {_same_machine_key(results[n].get("machine")) for n in names}
    dates = sorted(str(results[n].get("date", "?")) for n in names)
    lines = [f"Generated by `python -m benchkit.bench.readme` from `benchkit bench {' / '.join(names)}` run "
             f"{dates[0][:10]}" + (f" to {dates[-1][:10]}" if dates[-1][:10] != dates[0][:10] else "") +
             " (do not edit by hand). Wall time depends on the machine's other load; CPU time (user + sys) is the "
             "steadier figure.", ""]
    if len(machines) == 1:
        lines += [f"Machine: {_machine_line(results[names[0]].get('machine') or {})}.", ""]
    for n in names:
        r = results[n]
        body = RENDER[n](r) if n in RENDER else _generic(n, r)
        load = (r.get("machine") or {}).get("loadavg_1_5_15")
        if load:
            body[0] += f" (load average {load[0]:.1f} at the end of the run)"
        if len(machines) > 1:
            body[0] += f" [{_machine_line(r.get('machine') or {})}]"
        lines += body
    return "\n".join(lines)


def rewrite(readme, results: dict) -> str:
    """Replace the marked section of ``readme`` with :func:`render` of ``results``; returns the new text."""
    from benchkit.fsio import atomic_write_bytes

    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{readme}: needs exactly one {BEGIN} ... {END} block (the performance section)")
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{render(results)}\n{END}{tail}"
    atomic_write_bytes(readme, new.encode("utf-8"))
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchkit.bench.readme", description=__doc__.split("\n")[0])
    ap.add_argument("results", help="file of `benchkit bench NAME` last lines (JSON), one per line")
    ap.add_argument("--readme", default="README.md", help="README to rewrite (default: ./README.md)")
    a = ap.parse_args(argv)
    try:
        rewrite(a.readme, load_results(a.results))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"rewrote the performance section of {a.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
