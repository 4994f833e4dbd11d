"""What stored bytes cost and how they read: shared by the console report and the dashboard."""

from __future__ import annotations


def monthly_cost(stored_bytes: int, price_per_gb_month: float) -> float:
    """Estimated storage cost per month in USD (GB = 10^9 bytes, as S3 bills)."""
    return stored_bytes / 1e9 * price_per_gb_month


def human_bytes(count: int) -> str:
    """``812 B``, ``411.8 kB``, ``3.3 MB``... (powers of 1000, as storage is billed)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
