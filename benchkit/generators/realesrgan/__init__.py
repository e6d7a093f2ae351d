"""Real-ESRGAN two-order degradation (Wang et al. 2021), re-implemented for dataset synthesis.

Modules: ``kernels`` (blur kernel formulas), ``settings`` (the strict Config), ``params``
(sampled parameters), ``sampling`` (all random draws), ``ops`` (numpy/OpenCV operations; generator
version 1.1), ``ops_v2`` (version 2's USM and Poisson tables), ``versions`` (version -> operations),
``pipeline`` (the generator), ``torch_path`` (batched torch implementation, CPU or CUDA).
"""
