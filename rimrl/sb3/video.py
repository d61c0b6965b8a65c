"""The frames of ``rimrl evaluate --video``: the first episode of env 0 from its first frame
to its last (the outcome, rendered before the automatic reset), each frame captioned with
the mission for MiniGrid envs and, for RIMs policies, a strip of which RIMs were active on
that step (filled: active), as public RIMs demos show it. Written as an animated GIF."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw

from rimrl.errors import describe_os_error

#: pixels of the caption band and of one RIM's cell in the activity strip
CAPTION_HEIGHT = 14
CELL = 12


class FrameRecorder(gym.Wrapper):
    """Renders the wrapped env after every reset and step, so the last frame of an episode
    is kept although the vector env resets at once; stops after ``max_frames``."""

    def __init__(self, env: gym.Env, max_frames: int = 4000, units: Optional[int] = None):
        super().__init__(env)
        self.units = units  # RIMs in the policy: every frame gets a strip of that many
        self.frames: list[np.ndarray] = []
        self.max_frames = max_frames
        self.done = False
        self._next_active: Optional[np.ndarray] = None

    def note_active(self, active: Optional[np.ndarray]) -> None:
        """Which RIMs were active on the step about to be taken (None: not a RIMs policy)."""
        self._next_active = active

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        if not self.done and not self.frames:
            self._record()
        return out

    def step(self, action):
        out = self.env.step(action)
        if not self.done:
            self._record()
            if out[2] or out[3]:  # the first episode ended: its outcome is the last frame
                self.done = True
        return out

    def _record(self) -> None:
        if len(self.frames) < self.max_frames:
            frame = self.env.render()
            if frame is not None:
                active = self._next_active
                if self.units and active is None:  # the first frame: no step taken yet
                    active = np.zeros(self.units, dtype=bool)
                self.frames.append(caption(frame, mission_of(self.env), active))


def mission_of(env: gym.Env) -> Optional[str]:
    mission = getattr(env.unwrapped, "mission", None)
    return mission if isinstance(mission, str) else None


def caption(frame: np.ndarray, mission: Optional[str],
            active: Optional[np.ndarray]) -> np.ndarray:
    """``frame`` with the mission written above it and the RIMs activity strip below."""
    h, w = frame.shape[:2]
    top = CAPTION_HEIGHT if mission else 0
    bottom = CELL + 4 if active is not None else 0
    if active is not None:  # room for every RIM's cell even on a small frame
        w = max(w, 2 + len(active) * (CELL + 2))
    canvas = Image.new("RGB", (w, h + top + bottom), "white")
    canvas.paste(Image.fromarray(frame[..., :3]), (0, top))
    draw = ImageDraw.Draw(canvas)
    if mission:
        draw.text((2, 1), mission, fill="black")
    if active is not None:
        y = h + top + 2
        for k, on in enumerate(np.asarray(active, dtype=bool)):
            box = (2 + k * (CELL + 2), y, 2 + k * (CELL + 2) + CELL, y + CELL)
            draw.rectangle(box, fill="black" if on else "white", outline="black")
    return np.asarray(canvas)


def write_gif(frames, path: Path) -> Optional[Path]:
    """Frames (H, W, 3) uint8 as an animated GIF (Pillow; no video codec needed). ``None``
    with a warning on stderr when the OS refuses the file (disk full, read-only): a video is
    not worth the evaluation it belongs to, which is still written or printed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        images = [Image.fromarray(f) for f in frames if f is not None]
        images[0].save(path, save_all=True, append_images=images[1:], duration=33, loop=0)
    except OSError as exc:
        print(f"rimrl: warning: video not written: {describe_os_error(exc)}", file=sys.stderr)
        return None
    return path
