"""benchkit train-detector hmb --data HMB_DATASET [--model yolo11n.yaml|PATH.pt] [--epochs] [--imgsz] [--device]"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("train-detector", help="train the HMB detector HMB-R counts with (ultralytics, offline)",
                       description="Export a YOLO dataset from an HMB dataset's boxes (meta.hmb_boxes, else the "
                       "hmb_weight masks), train YOLO11 offline, evaluate mAP@0.5 and precision on a held-out "
                       "split, write the weights as <weights root>/hmb/hmb-yolo11-<sha256>.pt with a JSON report "
                       "and a curves image.")
    p.add_argument("task", choices=["hmb"], help="the detector to train (hmb: human motion blur)")
    p.add_argument("--data", required=True, help="an HMB dataset folder (hmb-synth)")
    p.add_argument("--model", default="yolo11n.yaml",
                   help="yolo11n.yaml (from scratch, default) or the path of your YOLO11 checkpoint to fine-tune")
    p.add_argument("--model-sha256", default=None, help="sha256 pin of a .pt --model (it is a pickle)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2, help="held-out share (deterministic by key)")
    p.add_argument("--threshold", type=float, default=0.5, help="W_s threshold when boxes come from masks")
    p.add_argument("--out", default=None, help="report folder (default runs/train-detector-hmb)")
    p.add_argument("--weights-root", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from benchkit.metrics.hmb_detector import train_detector

    train_detector(args.data, args.out or "runs/train-detector-hmb", weights_root=args.weights_root,
                   model=args.model, model_sha256=args.model_sha256, epochs=args.epochs, imgsz=args.imgsz,
                   batch=args.batch, device=args.device, seed=args.seed, val_fraction=args.val_fraction,
                   threshold=args.threshold)
    return 0
