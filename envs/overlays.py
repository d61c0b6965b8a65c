"""Distractor sprites drawn onto Atari frames, with the pickup suite's split names.

:class:`DistractorOverlay` wraps a raw ALE env (RGB frames, before frame skip, grayscale and
resizing) and draws a few small sprites onto every frame. Each sprite has a shape, a colour,
a size and a motion drawn from the pools of a split; sprites move between frames and bounce
off the edges of their band. They are kept out of the bottom ``keep_clear`` fraction of the
screen, where most games put the player, so the game stays playable.

Splits: ``train`` (training pools), ``novel-color`` (colours never in the training pool),
``novel-shape`` (shapes never in the training pool), ``more`` (more sprites) and ``novel``
(all at once). Sprites are redrawn at new places at each reset, from the env's own RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

SPLITS = ("train", "novel-color", "novel-shape", "more", "novel")
COLORS = {
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230),
    "white": (235, 235, 235), "magenta": (220, 50, 220), "cyan": (40, 220, 220),
    "orange": (245, 150, 30), "yellow": (240, 230, 40),
}
SHAPES = ("square", "disc", "cross", "triangle", "ring", "bar")
MOTIONS = ("static", "drift", "jitter")


@dataclass(frozen=True)
class OverlayPools:
    """Sprite pools per split.

    Args:
        train_colors, novel_colors: colour names (keys of :data:`COLORS`), disjoint.
        train_shapes, novel_shapes: shape names (:data:`SHAPES`), disjoint.
        sizes: sprite sizes in pixels of the 210x160 frame.
        motions: motion kinds (:data:`MOTIONS`).
        count, more_count: sprites per frame in ``train``/``novel-*`` and in ``more``/``novel``.
        keep_clear: bottom fraction of the screen never covered by sprites.
    """

    train_colors: tuple[str, ...] = ("red", "green", "blue", "white")
    novel_colors: tuple[str, ...] = ("magenta", "cyan", "orange", "yellow")
    train_shapes: tuple[str, ...] = ("square", "disc", "bar")
    novel_shapes: tuple[str, ...] = ("cross", "triangle", "ring")
    sizes: tuple[int, ...] = (6, 8, 10)
    motions: tuple[str, ...] = MOTIONS
    count: int = 3
    more_count: int = 6
    keep_clear: float = 0.25

    def __post_init__(self):
        if set(self.train_colors) & set(self.novel_colors):
            raise ValueError("novel_colors must not include a training colour")
        if set(self.train_shapes) & set(self.novel_shapes):
            raise ValueError("novel_shapes must not include a training shape")
        bad = set(self.train_colors + self.novel_colors) - set(COLORS)
        bad |= set(self.train_shapes + self.novel_shapes) - set(SHAPES)
        bad |= set(self.motions) - set(MOTIONS)
        if bad:
            raise ValueError(f"unknown overlay pool entries: {sorted(bad)}")
        if not 0 <= self.count <= self.more_count or not 0 <= self.keep_clear < 1:
            raise ValueError("need 0 <= count <= more_count and 0 <= keep_clear < 1")

    def split(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        """(colours, shapes, count) of split ``name``."""
        if name not in SPLITS:
            raise ValueError(f"unknown overlay split '{name}'; choose one of: {', '.join(SPLITS)}")
        colors = self.novel_colors if name in ("novel-color", "novel") else self.train_colors
        shapes = self.novel_shapes if name in ("novel-shape", "novel") else self.train_shapes
        count = self.more_count if name in ("more", "novel") else self.count
        return colors, shapes, count


def sprite_mask(shape: str, size: int) -> np.ndarray:
    """A (size, size) boolean stencil of ``shape``."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    r = size / 2
    if shape == "square":
        return np.ones((size, size), bool)
    if shape == "disc":
        return (yy - c) ** 2 + (xx - c) ** 2 <= r * r
    if shape == "ring":
        d = (yy - c) ** 2 + (xx - c) ** 2
        return (d <= r * r) & (d >= (r - 2) ** 2)
    if shape == "cross":
        w = max(1, size // 4)
        return (np.abs(yy - c) < w) | (np.abs(xx - c) < w)
    if shape == "triangle":
        return np.abs(xx - c) <= (yy + 1) / 2
    if shape == "bar":
        return np.abs(yy - c) < max(1, size // 4)
    raise ValueError(f"unknown shape {shape!r}")


class DistractorOverlay(gym.ObservationWrapper):
    """Draw a split's distractor sprites onto each raw RGB frame (see module docstring).

    Args:
        env: an env with (H, W, 3) uint8 observations (ALE with obs_type rgb).
        split: one of :data:`SPLITS`.
        pools: :class:`OverlayPools` or a dict of its fields.
    """

    def __init__(self, env: gym.Env, split: str = "train", pools=None):
        super().__init__(env)
        self.pools = pools if isinstance(pools, OverlayPools) else OverlayPools(**(pools or {}))
        self.colors, self.shapes, self.count = self.pools.split(split)
        self.split = split
        h, w = env.observation_space.shape[:2]
        self.band = int(h * (1 - self.pools.keep_clear))  # sprites live in rows [0, band)
        self.width = w
        self.sprites: list[dict] = []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        rng = self.env.unwrapped.np_random
        self.sprites = [self._new_sprite(rng) for _ in range(self.count)]
        return self.observation(obs), info

    def _new_sprite(self, rng) -> dict:
        size = int(rng.choice(self.pools.sizes))
        motion = str(rng.choice(self.pools.motions))
        speed = {"static": 0.0, "drift": 1.5, "jitter": 0.0}[motion]
        angle = rng.uniform(0, 2 * np.pi)
        return {
            "shape": str(rng.choice(self.shapes)), "color": str(rng.choice(self.colors)),
            "size": size, "motion": motion,
            "y": float(rng.uniform(0, self.band - size)), "x": float(rng.uniform(0, self.width - size)),
            "vy": speed * np.sin(angle), "vx": speed * np.cos(angle),
        }

    def observation(self, frame: np.ndarray) -> np.ndarray:
        frame = frame.copy()
        rng = self.env.unwrapped.np_random
        for s in self.sprites:
            self._move(s, rng)
            y, x, size = int(s["y"]), int(s["x"]), s["size"]
            region = frame[y:y + size, x:x + size]
            stencil = sprite_mask(s["shape"], size)[:region.shape[0], :region.shape[1]]
            region[stencil] = COLORS[s["color"]]
        return frame

    def _move(self, s: dict, rng) -> None:
        if s["motion"] == "jitter":
            s["vy"], s["vx"] = rng.uniform(-1.5, 1.5, size=2)
        s["y"] += s["vy"]
        s["x"] += s["vx"]
        top, left = self.band - s["size"], self.width - s["size"]
        if not 0 <= s["y"] <= top:
            s["vy"] = -s["vy"]
            s["y"] = min(max(s["y"], 0.0), top)
        if not 0 <= s["x"] <= left:
            s["vx"] = -s["vx"]
            s["x"] = min(max(s["x"], 0.0), left)
