"""Random-trajectory motion blur (Boracchi & Foi 2012 / DeblurGAN), FFT blur and spatially varying blur.

Modules: ``trajectory`` (batched random camera-shake trajectories), ``psf`` (trajectory -> PSF
rendering), ``fftblur`` (PSF blur entry points over :func:`benchkit.ops.convolve`), ``svblur`` (PSF fields
by Efficient Filter Flow, radial lens-blur preset), ``pipeline`` (the ``motion_blur`` generator),
``plot`` (example figure).
"""
