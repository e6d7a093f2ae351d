"""benchkit weights: report metric/method weight files; provision the NIQE parameters."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("weights", help="check weight files (status) or provision NIQE parameters")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    st = wsub.add_parser("status", help="which weight files are present / missing / failing checksum")
    st.add_argument("--weights-root", default=None,
                    help="weights root (default: $BENCHKIT_WEIGHTS or ~/.cache/benchkit/weights)")
    st.add_argument("--base-models", default=None, help="diffusion base-models folder (default "
                    "$BENCHKIT_BASE_MODELS or <weights root>/base-models)")
    st.add_argument("--json", action="store_true", help="print the report as JSON")
    st.add_argument("--all", action="store_true", help="also list weight-free metrics")
    st.set_defaults(func=run_status)
    pr = wsub.add_parser("provision", help="obtain weights that can be built offline (niqe)")
    pr.add_argument("what", choices=["niqe"], help="niqe: LIVE pristine parameters from the basicsr package")
    pr.add_argument("--weights-root", default=None)
    pr.set_defaults(func=run_provision)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_status(args) -> int:
    import json

    from benchkit.methods import method_weight_rows
    from benchkit.metrics.weights import register_weights_provider, weights_report, weights_root

    if args.base_models:  # flag > env > default, as in evaluate
        import os

        os.environ["BENCHKIT_BASE_MODELS"] = os.path.abspath(os.path.expanduser(args.base_models))
    register_weights_provider(method_weight_rows)
    from benchkit.faces.detect import face_weight_rows

    register_weights_provider(face_weight_rows)
    from benchkit.generators.hmb.segment import segmenter_weight_rows

    register_weights_provider(segmenter_weight_rows)
    root = weights_root(args.weights_root)
    rows = weights_report(root)
    if args.json:
        print(json.dumps({"weights_root": str(root), "files": rows}, indent=2))
        return 0
    print(f"weights root: {root}")
    by_owner: dict[str, list[dict]] = {}
    for r in rows:
        by_owner.setdefault(r["owner"], []).append(r)
    for owner, items in by_owner.items():
        if items[0]["status"] == "none":
            if args.all:
                print(f"  {owner:22s} ready (weight-free)")
            continue
        ready = all(r["status"] in ("ok", "unverified", "optional") for r in items)
        print(f"  {owner:22s} {'ready' if ready else 'UNAVAILABLE'}")
        for r in items:
            print(f"      [{r['status']:12s}] {r['file']}")
            if r["status"] not in ("ok", "unverified"):  # missing, failing, optional: say why / what it adds
                print(f"          -> {r['detail']}")
    return 0


def run_provision(args) -> int:
    from benchkit.metrics.weights import NIQE_SOURCE, provision_niqe

    path = provision_niqe(args.weights_root)
    print(f"wrote {path} (LIVE NIQE parameters from {NIQE_SOURCE}; mu 1x36, cov 36x36 verified)")
    return 0
