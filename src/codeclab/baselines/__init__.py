"""Real x264 / x265 / SVT-AV1 encodes of a clip, as RD ladders the lab compares codecs with."""

from codeclab.baselines.encoders import (
    BASELINE_ENCODERS,
    DEFAULT_LADDERS,
    BaselineEncoder,
    BaselineError,
)
from codeclab.baselines.ladder import (
    BaselineLadder,
    BaselinePoint,
    run_baseline,
    run_baselines,
    stream_path,
)

__all__ = [
    "BASELINE_ENCODERS",
    "DEFAULT_LADDERS",
    "BaselineEncoder",
    "BaselineError",
    "BaselineLadder",
    "BaselinePoint",
    "run_baseline",
    "run_baselines",
    "stream_path",
]
