"""The reference codecs shipped with codeclab as package data.

Each reference codec is one standalone module (Python + numpy only) that follows the codec
contract. The lab never imports them as codeclab code: it reads their source and runs it in a
sandbox, exactly like a designed codec.
"""

from importlib import resources
from pathlib import Path

REFERENCE_CODECS: tuple[str, ...] = ("intra_dct", "inter_dct")


def _check_name(name: str) -> None:
    if name not in REFERENCE_CODECS:
        known = ", ".join(REFERENCE_CODECS)
        raise ValueError(f"unknown reference codec {name!r}; known: {known}")


def reference_codec_path(name: str) -> Path:
    """The file holding reference codec `name` (one of REFERENCE_CODECS)."""
    _check_name(name)
    resource = resources.files(__name__).joinpath(f"{name}.py")
    if not isinstance(resource, Path):
        raise RuntimeError(
            f"reference codec {name!r} is not a file on disk ({resource}); codeclab seems to be "
            "installed from a zip: use reference_codec_source() instead"
        )
    return resource


def reference_codec_source(name: str) -> str:
    """The Python source of reference codec `name` (one of REFERENCE_CODECS)."""
    _check_name(name)
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
