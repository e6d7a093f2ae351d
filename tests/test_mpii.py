"""mpii-test: the RELEASE parser on a synthetic .mat with every loadmat quirk, the selection against an
independent computation, the released-folder mode, and bad input (malformed .mat, missing images, boxes
outside, empty selection) reported with the file and the fix while the rest builds."""

import json

import numpy as np
import pytest

E = np.zeros((0, 0))  # what MATLAB stores for an empty field


def _structs(dicts, fields):
    arr = np.zeros((1, len(dicts)), dtype=[(f, object) for f in fields])
    for i, d in enumerate(dicts):
        for f in fields:
            arr[0, i][f] = d.get(f, E)
    return arr


def _points(pts):
    """pts: [(x, y, id, is_visible)] (MATLAB 1-based pixels) -> struct array; one point -> squeezed on load."""
    return _structs([{"x": float(x), "y": float(y), "id": int(i), "is_visible": v} for x, y, i, v in pts],
                    ["x", "y", "id", "is_visible"])


def _rect(pts):
    return {"annopoints": _structs([{"point": _points(pts)}], ["point"]), "scale": 1.0,
            "objpos": _structs([{"x": 1.0, "y": 1.0}], ["x", "y"])}


def _joints(cx, cy, half):  # 4 joints spanning a (2 half) x (2 half) box, visibility in every encoding
    return [(cx - half, cy - half, 0, 1), (cx + half, cy - half, 1, "1"), (cx - half, cy + half, 2, E),
            (cx + half, cy + half, 3, "0")]


W, H = 200, 160
# name -> (img_train, [joint lists per person] | "test-rect" | None)
SPEC = {
    "a.jpg": (1, [_joints(100, 80, 30), _joints(112, 84, 30), [(10, 10, 0, 1)]]),  # 2nd overlaps, 3rd 1 joint
    "b.jpg": (1, [_joints(60, 70, 25) + [(-1, -1, 9, 0)]]),  # single person: squeezed scalar; x = -1 missing
    "c.jpg": (0, "test-rect"),  # test image: rect without annopoints
    "d.jpg": (1, [_joints(100, 80, 8)]),  # small box: rejected
    "e.jpg": (1, [_joints(100, 80, 30)]),  # image missing on disk
    "f.jpg": (1, [_joints(900, 900, 20)]),  # box wholly outside the image
    "g.jpg": (1, [[(50, 50, 0, 1)]]),  # single point (squeezed struct): too few joints
    "h.jpg": (1, None),  # empty annorect
    "i.jpg": (1, [_joints(40, 40, 24), _joints(160, 120, 24)]),  # two disjoint people: both kept
}
CFG = {"margin": 0.1, "min_box": 40, "min_joints": 2, "overlap_iou": 0.0, "size": 64}


def write_release(root):
    import cv2
    import scipy.io

    annos = []
    for name, (_, persons) in SPEC.items():
        if persons is None:
            rects = E
        elif persons == "test-rect":
            rects = _structs([{"scale": 2.0, "objpos": _structs([{"x": 5.0, "y": 5.0}], ["x", "y"])}],
                             ["scale", "objpos"])
        else:
            rects = _structs([_rect(p) for p in persons], ["annopoints", "scale", "objpos"])
        annos.append({"image": _structs([{"name": name}], ["name"]), "annorect": rects, "frame_sec": E,
                      "vididx": E})
    release = {"annolist": _structs(annos, ["image", "annorect", "frame_sec", "vididx"]),
               "img_train": np.array([[t for t, _ in SPEC.values()]]),
               "single_person": np.array([[1]] * len(SPEC), dtype=object),
               "act": E, "video_list": E}
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(root / "mpii_human_pose_v1_u12_1.mat"), {"RELEASE": release})
    (root / "images").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in SPEC:
        if name != "e.jpg":
            cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return root


def expected_selection():
    """Independent plain-Python selection of the module docstring's rules."""
    out = []
    for name, (_, persons) in SPEC.items():
        if not isinstance(persons, list) or name == "e.jpg":
            continue
        cands = []
        for ridx, pts in enumerate(persons, 1):
            xs = [x - 1 for x, y, *_ in pts if x >= 0]
            ys = [y - 1 for x, y, *_ in pts if x >= 0]
            if len(xs) < 2:
                continue
            m = 0.1 * max(max(xs) - min(xs), max(ys) - min(ys))
            x0, y0, x1, y1 = min(xs) - m, min(ys) - m, max(xs) + m, max(ys) + m
            if x1 <= 0 or y1 <= 0 or x0 >= W or y0 >= H:
                continue
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            side = round(max(x1 - x0, y1 - y0))
            if max(x1 - x0, y1 - y0) < 40 or side > min(W, H):
                continue
            sx = min(max(round((x0 + x1) / 2 - side / 2), 0), W - side)
            sy = min(max(round((y0 + y1) / 2 - side / 2), 0), H - side)
            d = (sx + side / 2 - W / 2) ** 2 + (sy + side / 2 - H / 2) ** 2
            cands.append((d, ridx, (sx, sy, side)))
        kept = []
        for d, ridx, sq in sorted(cands):
            overl = [k for k in kept if not (sq[0] + sq[2] <= k[0] or k[0] + k[2] <= sq[0]
                                             or sq[1] + sq[2] <= k[1] or k[1] + k[2] <= sq[1])]
            if not overl:
                kept.append(sq)
                out.append((f"{name[:-4]}_p{ridx}", list(sq)))
    return sorted(out)


def test_parser_handles_every_quirk(tmp_path):
    from benchkit.builders.mpii import parse_release

    root = write_release(tmp_path / "mpii")
    imgs = {im.name: im for im in parse_release(root / "mpii_human_pose_v1_u12_1.mat")}
    assert list(imgs) == list(SPEC)
    assert [imgs[n].is_train for n in SPEC] == [t for t, _ in SPEC.values()]
    assert len(imgs["a.jpg"].persons) == 3 and [p.ridx for p in imgs["a.jpg"].persons] == [1, 2, 3]
    b = imgs["b.jpg"].persons
    assert len(b) == 1 and b[0].joints.shape == (4, 2)  # the x = -1 joint dropped
    assert b[0].visible == [1, 1, -1, 0]  # int, '1', empty, '0'
    assert np.allclose(b[0].joints[0], (60 - 25 - 1, 70 - 25 - 1))  # 1-based -> 0-based
    assert len(imgs["c.jpg"].persons) == 1 and imgs["c.jpg"].persons[0].joints.shape == (0, 2)
    assert imgs["g.jpg"].persons[0].joints.shape == (1, 2)  # one squeezed point
    assert imgs["h.jpg"].persons == []


def test_rebuild_selection_equals_independent_computation_and_rest_builds(tmp_path):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.manifest import read_jsonl

    root = write_release(tmp_path / "mpii")
    sets = ["rebuild=true"] + [f"{k}={v}" for k, v in CFG.items()]
    s = build(make_builder("mpii-test", str(root), sets), tmp_path / "out", progress=False)
    recs = sorted(read_jsonl(tmp_path / "out" / "manifest.jsonl"), key=lambda r: r["key"])
    got = [(r["key"], r["meta"]["crop"]) for r in recs]
    want = expected_selection()
    assert got == want and len(want) == 4  # a_p1, b_p1, i_p1, i_p2
    spec = json.loads((tmp_path / "out" / "spec.json").read_text())
    assert spec["roles"] == {"lq": "input"} and "5427" in spec["approximates"].replace(",", "")
    from benchkit.images import read_image

    for r in recs:
        assert read_image(tmp_path / "out" / r["outputs"]["lq"]["path"]).shape == (64, 64, 3)
    fails = [json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    by = {f["key"]: f for f in fails}
    assert "e" in by and by["e"]["path"].endswith("images/e.jpg") and "missing" in by["e"]["error"]
    assert by["e"]["fix"]
    assert "f_p1" in by and "outside" in by["f_p1"]["error"] and by["f_p1"]["fix"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "funnel: after NMS" in card and "approximates the released MPII-Test (5427" in card
    assert s.failed == 0


def test_malformed_mat_and_empty_selection_name_file_and_fix(tmp_path):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.errors import BadInputError

    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    (bad / "mpii_human_pose_v1_u12_1.mat").write_bytes(b"MATLAB 5.0 MAT-file garbage" + bytes(200))
    with pytest.raises(BadInputError) as ei:
        build(make_builder("mpii-test", str(bad), ["rebuild=true"]), tmp_path / "o1", progress=False)
    assert "mpii_human_pose_v1_u12_1.mat" in str(ei.value) and ei.value.fix
    root = write_release(tmp_path / "mpii")
    with pytest.raises(BadInputError) as ei:
        build(make_builder("mpii-test", str(root), ["rebuild=true", "min_box=1000"]), tmp_path / "o2",
              progress=False)
    assert "selection is empty" in str(ei.value) and "min_box" in ei.value.fix


def test_released_folder_validates_every_image(tmp_path, cli_env):
    import cv2

    from conftest import run_cli

    src = tmp_path / "MPII-Test"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(src / f"{i:05d}.png"), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    (src / "00003.png").write_bytes(b"not an image")
    p = run_cli(["build-dataset", "mpii-test", "--source", str(src), "--out", str(tmp_path / "ds"),
                 "--no-progress"], env=cli_env, check=False)
    out = tmp_path / "ds"
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3, p.stdout + p.stderr
    fails = (out / "failures.jsonl").read_text()
    assert "00003.png" in fails and "decode" in fails
    assert json.loads((out / "spec.json").read_text())["roles"] == {"lq": "input"}
    for i in range(3):  # copied verbatim
        assert (out / "lq" / f"{i:05d}.png").read_bytes() == (src / f"{i:05d}.png").read_bytes()
