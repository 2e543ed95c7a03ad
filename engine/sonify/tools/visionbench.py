"""What the people, zone and flow analysis costs, part by part, against the plain analysis.

On consecutive frames of the demo's ``visitors`` look (people walking through a room), every
contender analyses the same frame in turn, round after round (interleaved, so drift on a
shared machine hits all alike), and the median per part is reported in ms and as a ratio of
the plain picture analysis (``Analyzer().analyze``) measured in the same run:

- ``blobs``: background subtraction and blobs (presence, blobs);
- ``tracker``: matching blobs to tracked people (the people features, beyond the blobs);
- ``hog``: OpenCV's HOG people detector on one frame (it runs every ``hog_every`` frames:
  ``hog_amortised`` is its cost per frame at the default rate);
- ``faces``: the Haar face cascade on one frame (``faces_amortised`` likewise);
- ``flow``: DIS optical flow, and ``flow_farneback`` for comparison;
- ``zone``: one quarter-frame zone read for presence, flow, people and its picture features;
- ``downscale``: the vision analysis size, paid once for all of them;
- ``default_all``: every vision feature at the default config, HOG and faces amortised in.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from sonify.capture.base import Frame
from sonify.capture.demo import DemoSource
from sonify.features.analyzer import Analyzer, Features
from sonify.features.registry import VISION_NAMES
from sonify.features.vision import Vision, VisionConfig
from sonify.features.zones import Zone

RESOLUTIONS: dict[str, tuple[int, int]] = {"360p": (640, 360), "720p": (1280, 720)}
START_S = 12.0  # the demo's visitors are in the room by then

_ZONE = Zone.rect("corner", 0.0, 0.5, 0.5, 1.0)
_ZONE_NAMES = frozenset(f"zone:corner:{n}" for n in ("presence", "flow", "people",
                                                     "brightness", "motion"))


def _contenders() -> dict[str, tuple[Vision, frozenset[str], str]]:
    """name -> (a Vision of its own, the names it reads, the part_ms key that is its cost)."""
    every = VisionConfig(hog_every=1, faces_every=1)
    return {
        "blobs": (Vision(), frozenset({"presence", "blobs"}), "foreground"),
        "tracker": (Vision(), frozenset({"people", "person1_x"}), "tracker"),
        "hog": (Vision(config=replace(every, detector="hog")), frozenset({"people"}), "hog"),
        "faces": (Vision(config=every), frozenset({"faces"}), "faces"),
        "flow": (Vision(), frozenset({"flow", "flow_x"}), "flow"),
        "flow_farneback": (Vision(config=VisionConfig(flow="farneback")),
                           frozenset({"flow"}), "flow"),
        "zone": (Vision([_ZONE]), _ZONE_NAMES, "zone:corner"),
        "downscale": (Vision(), frozenset({"flow"}), "downscale"),
        "default_all": (Vision([_ZONE]), frozenset(VISION_NAMES) | _ZONE_NAMES, "total"),
    }


def run_vision_bench(resolutions: tuple[str, ...] = ("360p", "720p"), frames: int = 40,
                     seed: int = 0, progress: Callable[[str], None] | None = None) -> dict:
    """Per resolution: ``plain_ms`` and per part ``{"ms", "ratio"}`` (median ms, and that over
    ``plain_ms``), plus the default ``hog_every``/``faces_every`` and the amortised costs."""
    cv2.setNumThreads(1)  # one thread for every contender: the comparison is per core
    defaults = VisionConfig()
    out: dict = {"hog_every": defaults.hog_every, "faces_every": defaults.faces_every,
                 "vision_width": defaults.width, "resolutions": {}}
    for res in resolutions:
        width, height = RESOLUTIONS[res]
        if progress:
            progress(f"vision {res}: {frames} frames")
        source = DemoSource("visitors", width=width, height=height, seed=seed)
        source.open()
        start = round(START_S * source.fps)
        images = [source.render(start + k) for k in range(frames)]
        source.close()
        analyzer = Analyzer()
        contenders = _contenders()
        plain: list[float] = []
        costs: dict[str, list[float]] = {name: [] for name in contenders}
        for k, image in enumerate(images):
            frame = Frame(k, k / source.fps, image)
            began = time.perf_counter()
            features: Features = analyzer.analyze(frame)
            plain.append((time.perf_counter() - began) * 1e3)
            for name, (vision, wanted, part) in contenders.items():
                vision.analyze(frame, features, wanted)
                if k >= 2:  # the first frames teach the background and the flow
                    costs[name].append(vision.part_ms.get(part, 0.0))
        plain_ms = statistics.median(plain[2:])
        row: dict = {"size": f"{width}x{height}", "plain_ms": round(plain_ms, 3), "parts": {}}
        for name, values in costs.items():
            ms = statistics.median(values) if name != "default_all" else float(np.mean(values))
            row["parts"][name] = {"ms": round(ms, 3), "ratio": round(ms / plain_ms, 3)}
        for name, every in (("hog", defaults.hog_every), ("faces", defaults.faces_every)):
            ms = row["parts"][name]["ms"] / every
            row["parts"][f"{name}_amortised"] = {"ms": round(ms, 3),
                                                 "ratio": round(ms / plain_ms, 3)}
        out["resolutions"][res] = row
    return out


def format_vision_bench(result: dict) -> str:
    """The bench as a table: one row per part, ms and ratio per resolution."""
    resolutions = list(result["resolutions"])
    lines = ["vision part        " + "".join(f"{r:>22}" for r in resolutions)]
    rows = result["resolutions"]
    plain = "".join(f"{rows[r]['plain_ms']:>12.2f} ms      1x" for r in resolutions)
    lines.append(f"{'plain analysis':<19}{plain}")
    for part in rows[resolutions[0]]["parts"]:
        cells = "".join(f"{rows[r]['parts'][part]['ms']:>12.2f} ms "
                        f"{rows[r]['parts'][part]['ratio']:>6.2f}x" for r in resolutions)
        lines.append(f"{part:<19}{cells}")
    lines.append(f"(vision width {result['vision_width']} px; HOG every {result['hog_every']} "
                 f"frames, faces every {result['faces_every']}; 'default_all' is a mean)")
    return "\n".join(lines)
