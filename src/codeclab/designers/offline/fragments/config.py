"""Knob constants the fragments read, with the values the renderer replaces per genome.

The values here are the defaults the fragments run with in place (tests); a rendered module
defines each of these names once, from its genome (`render.knob_constants`).
"""

GENOME: dict[str, object] = {}
MACROBLOCK = 16
LUMA_T = 8
ADAPTIVE_TRANSFORM = 0
CHROMA_T = 8
INTRA_ROUNDING = 0.5
INTRA_PRED = 0
INTRA_4X4 = 0
INTER_ROUNDING = 0.17
CHROMA_QP_OFFSET = 0
P_QP_OFFSET = 0
MBTREE = 0
P_INTRA = 0
INTRA_PERIOD = 30
NUM_REFS = 1
SEARCH_RANGE = 16
SUBPEL = 1
ZERO_BIAS = 100
SKIP_MEDIAN = 0
AMVP = 0
PARTITIONS = 0
RD_LAMBDA = 0.0
RDOQ_LAMBDA = 0.0
ME_LAMBDA = 0.0
DEBLOCK = 0
BFRAMES = 0
B_QP_OFFSET = 2
DOWNSCALE_BELOW = 0
ZLIB_LEVEL = 9
