"""The progress chart's series: the best rate and quality over iterations."""

from __future__ import annotations

from codeclab.web import queries, schemas


def thin_progress(points: list[queries.ProgressPoint], limit: int) -> schemas.Progress:
    """Running bests over every point; at most `limit` points kept, evenly spread (the best of
    each stretch by PSNR-Y, so improvements stay visible)."""
    best_psnr: list[float | None] = []
    best_mbps: list[float | None] = []
    psnr_so_far: float | None = None
    mbps_so_far: float | None = None
    for point in points:
        if point.achieved and point.psnr_y is not None:
            psnr_so_far = point.psnr_y if psnr_so_far is None else max(psnr_so_far, point.psnr_y)
        if point.achieved and point.mbps is not None:
            mbps_so_far = point.mbps if mbps_so_far is None else min(mbps_so_far, point.mbps)
        best_psnr.append(psnr_so_far)
        best_mbps.append(mbps_so_far)
    chosen = list(range(len(points)))
    if len(points) > limit:
        chosen = []
        for bucket in range(limit):
            lo = bucket * len(points) // limit
            hi = (bucket + 1) * len(points) // limit
            stretch = range(lo, hi)
            chosen.append(max(stretch, key=lambda i: (points[i].psnr_y or -1.0, -i)))
    return schemas.Progress(
        total=len(points),
        iteration=[points[i].iteration for i in chosen],
        id=[points[i].id for i in chosen],
        mbps=[points[i].mbps for i in chosen],
        psnr_y=[points[i].psnr_y for i in chosen],
        achieved=[points[i].achieved for i in chosen],
        best_psnr_y=[best_psnr[i] for i in chosen],
        best_mbps=[best_mbps[i] for i in chosen],
    )
