"""Numbers that define the features, shared by the kernels and their references.

Every threshold is in 8-bit luma units at the analysis size. A change here changes what a
feature means: keep ``registry.py``'s descriptions true to it.
"""

# Luma: BT.601 weights in 15-bit fixed point, rounded: bit-exact with OpenCV's BGR2GRAY.
LUMA_B = 3735
LUMA_G = 19235
LUMA_R = 9798
LUMA_SHIFT = 15

# Hue histogram: 12 bins of 30 degrees, bin 0 centred on red (0 deg), 4 on green, 8 on blue.
HUE_BINS = 12
# Orientation histogram: 8 bins of 22.5 degrees of gradient direction, bin 0 = horizontal
# gradient (a vertical edge), bin 4 = vertical gradient (a horizontal edge).
ORIENT_BINS = 8
# Luma histogram used by scene_cut.
LUMA_HIST_BINS = 32
# Coarse luma grid (rows x columns), for scanning the picture.
GRID_ROWS = 8
GRID_COLS = 8
# Brightest bright points kept, as (x, y, level) rows.
MAX_STARS = 16

# A Sobel gradient magnitude sqrt(gx^2 + gy^2) at or above this marks an edge pixel: a step
# of 25 luma levels (the 3x3 Sobel answers 4x a step).
EDGE_THRESHOLD = 100
# Edge density is the share of edge pixels scaled to this analysis width: a line-like edge
# covers w pixels of w*h, so the raw share falls as 1/w; rescaling keeps a picture's
# edge_density the same whatever the analysis size.
EDGE_REF_WIDTH = 480
# Texture: mean |8-neighbour Laplacian| mapped so that this value reads 1.0.
TEXTURE_FULL_SCALE = 160.0
# Motion: luma changes at or below this are sensor noise and ignored...
MOTION_NOISE_GATE = 12
# ... and changes are clipped at this many levels (a pixel that changed this much "fully moved").
MOTION_CLIP = 64
# Colourfulness (Hasler & Suesstrunk 2003, in 8-bit units) that reads 1.0: "extremely
# colourful" in their scale is 109.
COLORFULNESS_FULL_SCALE = 120.0
# Warmth: a neutral prior of this many levels of |R - B| per pixel, so that a nearly grey
# picture reads about 0.5 instead of swinging on its sensor noise.
WARMTH_PRIOR = 8.0
# Bright points: a peak at least STAR_MIN_LEVEL, strictly the brightest of its 3x3 neighbourhood
# (first pixel in raster order wins a tie), and at least STAR_MIN_CONTRAST above every pixel on
# the square ring STAR_RING pixels away: a point smaller than about 2*STAR_RING-1 pixels across.
STAR_MIN_LEVEL = 128
STAR_MIN_CONTRAST = 64
STAR_RING = 3
