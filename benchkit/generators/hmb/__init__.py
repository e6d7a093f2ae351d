"""Human motion blur (HAODiff): part groups, segmentation passes, the hmb and haodiff generators."""
