"""The offline designer: an evolutionary search over a codec design space.

`space.Genome` is a point of the space (coding-tool knobs), `render.render` turns it into a
standalone codec module, `search` breeds new genomes from the history and `OfflineDesigner`
implements the designer protocol with them. No network, no key.
"""

from codeclab.designers.offline.designer import OfflineDesigner, genome_from_design
from codeclab.designers.offline.render import genome_from_source, render
from codeclab.designers.offline.space import (
    KNOBS,
    Genome,
    default_genome,
    inter_dct_like,
    intra_dct_like,
)

__all__ = [
    "KNOBS",
    "Genome",
    "OfflineDesigner",
    "default_genome",
    "genome_from_design",
    "genome_from_source",
    "inter_dct_like",
    "intra_dct_like",
    "render",
]
