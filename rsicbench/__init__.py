"""rsicbench: reproducibility and evaluation suite for learned remote-sensing image compression.

Sub-packages (each maps to a top-level folder of the repository):
  rsicbench.datasets   <- datasets/   dataset classes, verification, splits
  rsicbench.metrics    <- metrics/    bpp, PSNR, MS-SSIM, LPIPS, VIFp, ROI-PSNR, BD
  rsicbench.reproduce  <- reproduce/  Codec interface, classical and learned codecs, engine
  rsicbench.downstream <- downstream/ EMTCAL-style scene classification on reconstructions
  rsicbench.reports    <- reports/    the self-contained HTML report
"""

__version__ = "0.1.0"
