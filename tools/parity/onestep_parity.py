"""Developer script (not CI): benchkit's one-step pieces against the official code, on CPU.

    python tools/parity/onestep_parity.py --hero-sr /path/to/Hero-SR --osediff /path/to/OSEDiff

Needs checkouts of W-JG/Hero-SR (``src/``) and cswry/OSEDiff (``my_utils/``). The official inference classes
hard-code CUDA, so the pieces that run on CPU are compared one by one, on random tiny inputs/weights:
TimeAdaptive (official class loaded with benchkit's tiny state dict; ``gumbel_softmax`` replaced by its
argmax for the deterministic comparison), the Gaussian tile weights, closed-form x0, AdaIN and wavelet colour
fixes. Prints the maximum absolute difference of each (recorded in docs/adapters.md).
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hero-sr", required=True, help="checkout of W-JG/Hero-SR")
    ap.add_argument("--osediff", required=True, help="checkout of cswry/OSEDiff")
    a = ap.parse_args()
    import torch
    from torch.nn import functional as F

    from benchkit.methods.onestep import core
    from benchkit.methods.onestep.herosr import pick_timestep, time_adaptive_module

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    res = {}

    sys.path.insert(0, a.hero_sr)
    import src.model as hm  # Hero-SR

    off = hm.TimeAdaptive().eval()
    mine = time_adaptive_module().eval()
    sd = {k: (v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() and k != "time_list" else v)
          for k, v in mine.state_dict().items()}
    mine.load_state_dict(sd)
    off.load_state_dict(sd)  # the same keys: strict load of benchkit's state dict into the official class
    x = torch.rand(2, 3, 96, 80, generator=g) * 2 - 1
    hm.F.gumbel_softmax = lambda z, tau=1, hard=True: F.one_hot(z.argmax(1), z.shape[1]).float()
    with torch.no_grad():
        t_off = off(x)
        logits = mine(x)
    t_mine = pick_timestep(logits, mine.time_list)
    res["timeadaptive_timestep_maxdiff"] = float((t_off - t_mine).abs().max())

    import numpy as np

    def official_gaussian(tw, th):  # HeroSR._gaussian_weights body (src/hero_sr.py), called on a stub self
        import src.hero_sr as hs

        stub = type("S", (), {"unet": type("U", (), {"config": type("C", (), {"in_channels": 4})})()})()
        return hs.HeroSR._gaussian_weights(stub, tw, th, 1)[0, 0].numpy()

    try:
        w_off = official_gaussian(96, 64)
        res["gaussian_weights_maxdiff"] = float(np.abs(w_off - core.gaussian_weights(96, 64)).max())
    except Exception as e:  # hero_sr.py imports its VAE hook: report, do not fail the rest
        res["gaussian_weights_maxdiff"] = f"not run ({type(e).__name__}: {e})"

    z, eps = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    ac = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2, 0)
    t = torch.tensor([999])
    res["x0_maxdiff"] = float((hm.get_x0_from_noise(z.double(), eps.double(), ac, t)
                               - core.x0_from_eps(z, eps, ac, t)).abs().max())

    sys.path.insert(0, a.osediff)
    import my_utils.wavelet_color_fix as wc  # OSEDiff

    tgt, src = torch.rand(1, 3, 64, 48, generator=g), torch.rand(1, 3, 64, 48, generator=g) * 0.6
    res["adain_maxdiff"] = float((wc.adaptive_instance_normalization(tgt, src).clamp(0, 1)
                                  - core.adain_fix(tgt, src)).abs().max())
    res["wavelet_maxdiff"] = float((wc.wavelet_reconstruction(tgt, src).clamp(0, 1)
                                    - core.wavelet_fix(tgt, src)).abs().max())
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
