"""Metrics the lab computes itself: PSNR, SSIM, quality reports (and rate, BD-rate)."""
