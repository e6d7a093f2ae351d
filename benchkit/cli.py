"""The ``benchkit`` command line. Sub-commands come from ``benchkit.registry.COMMANDS``.

One error boundary (:func:`main`) for every command:

- a known failure (:class:`~benchkit.errors.BenchkitError`: config, input, unknown name, damaged file; an
  ``OSError`` such as a read-only or full output, or an output path that is a file) prints ONE line
  ``benchkit CMD: error: <file>: <problem>; fix: ...`` and exits 2; commands exit 3 themselves when some
  items failed (the rest completed);
- an unexpected exception (a bug) prints a short message, writes the full traceback to
  ``benchkit-error-<UTC timestamp>.log`` in the command's output folder when it exists (else the current
  folder, else ``$BENCHKIT_CACHE``) and exits 1;
- ``BrokenPipeError`` (``benchkit weights status | head -1``) exits 0 quietly; Ctrl-C exits 130;
- ``--verbose`` (before or after the command name) also prints the traceback of known failures.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_ITEMS_FAILED = 3
SEED_MAX = 2**63 - 1


def build_parser() -> argparse.ArgumentParser:
    from benchkit import __version__
    from benchkit.registry import COMMANDS, load_object

    parser = argparse.ArgumentParser(
        prog="benchkit",
        description="Reproducible degraded datasets and restoration benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"benchkit {__version__}")
    parser.add_argument("--verbose", action="store_true", help="print full tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        load_object(COMMANDS[name])(sub)
    _add_verbose(sub)
    return parser


def _add_verbose(sub) -> None:
    """``--verbose`` accepted after the command name too (SUPPRESS: does not reset a flag given before it)."""
    for p in set(sub.choices.values()):
        if "--verbose" not in p._option_string_actions:
            p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="print full tracebacks of errors")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbose(action)


def _check_common_args(args) -> None:
    """Range checks of options shared by several commands (the message names the option and the range)."""
    from benchkit.errors import ConfigError

    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"--seed = {seed}: must be an integer in [0, 2**63-1]; fix: pass a non-negative seed")
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit = {limit}: must be >= 0 (samples, sorted by key); fix: omit --limit to "
                          "process everything")
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers = {workers}: must be >= 1; fix: pass --workers 1 or more")
    from benchkit.images import max_pixels

    max_pixels()  # a bad $BENCHKIT_MAX_PIXELS is one usage error, not a failure per image


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv[: argv.index("--")] if "--" in argv else "--verbose" in argv
    command = "?"
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command or "?"
        verbose = bool(getattr(args, "verbose", False))
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        _check_common_args(args)
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe surfaces here, inside the boundary
        return rc
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - the one boundary: every failure ends in a message and a status
        return handle_exception(e, command, args, verbose)


def handle_exception(e: BaseException, command: str, args=None, verbose: bool = False) -> int:
    """Report ``e`` as the error boundary does and return the exit status."""
    from benchkit.errors import BenchkitError

    if isinstance(e, BrokenPipeError) or (isinstance(e, OSError) and getattr(e, "errno", None) == 32):
        _silence_stdout()
        return 0
    if isinstance(e, KeyboardInterrupt):
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    prefix = f"benchkit {command}: error:"
    if isinstance(e, (BenchkitError, OSError, MemoryError, RecursionError)) and verbose:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    if isinstance(e, BenchkitError):
        _say(f"{prefix} {_one_line(str(e))}")
        return int(getattr(e, "exit_code", EXIT_USAGE))
    if isinstance(e, OSError):
        _say(f"{prefix} {describe_os_error(e)}")
        return EXIT_USAGE
    if isinstance(e, MemoryError):
        log = write_error_log(e, command, args)
        _say(f"{prefix} out of memory{_where_log(log)}; fix: use smaller images or settings, or fewer --workers")
        return EXIT_BUG
    log = write_error_log(e, command, args)
    if verbose:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    what = _one_line(f"{type(e).__name__}: {e}")[:300]
    _say(f"{prefix} unexpected internal error ({what}){_where_log(log)}; this is a bug: please report it "
         "with that file (or re-run with --verbose)")
    return EXIT_BUG


def _where_log(log) -> str:
    return f"; full traceback in {log}" if log else "; no log could be written"


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _one_line(text: str) -> str:
    """Messages are one line: multi-line details (download instructions, lists) joined with ' | '."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " | ".join(lines)


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


_OS_FIXES = {
    "ENOSPC": ("no space left on device", "free disk space or choose an output folder on another disk, then re-run "
               "(finished items are kept)"),
    "EDQUOT": ("disk quota exceeded", "free space in your quota or choose another output folder, then re-run"),
    "EROFS": ("read-only file system", "choose a writable output folder"),
    "EACCES": ("permission denied", "make it readable/writable for you (chmod) or choose another output folder"),
    "EPERM": ("operation not permitted", "check its permissions or choose another output folder"),
    "ENOTDIR": ("a part of this path is a file, not a folder",
                "remove or rename that file, or choose another output folder"),
    "EEXIST": ("already exists and is not a folder", "remove or rename it, or choose another output folder"),
    "EISDIR": ("is a folder where a file was expected", "pass the path of a file"),
    "ENOENT": ("no such file or folder", "check the path"),
    "ENAMETOOLONG": ("file name too long", "choose a shorter output path"),
    "EMFILE": ("too many open files", "raise the limit (ulimit -n) or use fewer --workers"),
    "ENOMEM": ("out of memory", "use fewer --workers or smaller inputs"),
}


def describe_os_error(e: OSError) -> str:
    """``<file>: <problem>; fix: <fix>`` for an OSError (the file comes from the error itself)."""
    import errno as _errno

    name = _errno.errorcode.get(e.errno or 0, "")
    problem, fix = _OS_FIXES.get(name, (e.strerror or str(e), "check the path, its permissions and free space"))
    files = [f for f in (e.filename, getattr(e, "filename2", None)) if f]
    where = " -> ".join(map(str, files)) if files else "(file not reported by the system)"
    return f"{where}: {problem}; fix: {fix}"


def _output_dir(command: str, args):
    """The command's output folder (where its error log goes), or None."""
    from pathlib import Path

    if args is None:
        return None
    g = lambda k: getattr(args, k, None)  # noqa: E731
    cand = {
        "degrade": g("out_dir"),
        "build-dataset": g("out") or (f"data/{g('name')}" if g("name") else None),
        "evaluate": g("run") or (f"runs/{Path(str(g('benchmark'))).stem}" if g("benchmark") else None),
        "demo": g("out"),
        "export": g("out"),
        "publish": g("out"),
        "score": Path(g("out")).parent if g("out") else None,
        "replay": g("write"),
    }.get(command)
    return Path(cand) if cand else None


def _writable_dir(p) -> bool:
    return p is not None and p.is_dir() and os.access(p, os.W_OK | os.X_OK)


def write_error_log(e: BaseException, command: str, args=None):
    """Write the traceback of ``e`` to ``benchkit-error-<timestamp>.log``; return its path (None if impossible)."""
    import datetime
    import traceback
    from pathlib import Path

    from benchkit import __version__

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    text = (f"benchkit {__version__} {command}\nargv: {sys.argv!r}\npython: {sys.version.split()[0]}\n\n"
            + "".join(traceback.format_exception(type(e), e, e.__traceback__)))
    cache = os.environ.get("BENCHKIT_CACHE")
    dirs = [_output_dir(command, args), Path.cwd(),
            Path(cache) if cache else Path.home() / ".cache" / "benchkit"]
    for d in dirs:
        try:
            if d is None:
                continue
            if d == dirs[-1]:
                d.mkdir(parents=True, exist_ok=True)
            if not _writable_dir(d):
                continue
            path = d / f"benchkit-error-{stamp}.log"
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
