"""Game levels as tile grids: formats, Sokoban and Lode Runner rules, repair, a baseline generator.

Pure numpy/Python; the content-kind seam lives in `genforge.modalities.level`, the metrics in
`genforge.metrics.levels`.
"""
