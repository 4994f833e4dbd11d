"""Where the benchmarks find the real clips: ../shared/clips beside the project."""

from __future__ import annotations

from pathlib import Path

SHARED_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "clips"
VIDEO_SUFFIXES = {".y4m", ".mp4", ".mkv", ".webm", ".avi", ".mov"}


def shared_clips(names: list[str] | None = None) -> list[Path]:
    """The clips in ../shared/clips (or the ones named), sorted; an error if none."""
    if not SHARED_CLIPS.is_dir():
        raise SystemExit(f"no clip folder at {SHARED_CLIPS}")
    clips = sorted(p for p in SHARED_CLIPS.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if names:
        clips = [p for p in clips if p.name in names]
        missing = set(names) - {p.name for p in clips}
        if missing:
            raise SystemExit(f"not in {SHARED_CLIPS}: {', '.join(sorted(missing))}")
    return clips
