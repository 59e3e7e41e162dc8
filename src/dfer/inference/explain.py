"""Why the model says what it says, per face window: where (Grad-CAM), what the attention block
attended to, and when (temporal importance).

- Grad-CAM (captum's LayerGradCam) of the target class (the predicted one unless asked) on a
  backbone stage: `layer3` (T/4 x S/8 x S/8: 4 x 14 x 14 at 16x112x112, the default) or `layer4`
  (T/8 x S/16 x S/16: 2 x 7 x 7), ReLU'd, upsampled trilinearly to the clip (T x S x S) and
  scaled to [0, 1] per window.
- The spatio-temporal attention block's maps (when the model has one): the spatial attention each
  position receives at each of its time steps (mean over the querying positions) and the temporal
  attention (T' x T', mean over positions).
- Temporal importance (captum's FeatureAblation): the drop in the target class's calibrated
  probability when each sampled frame is replaced by the mean of its neighbours (the first and the
  last by their one neighbour).
These need gradients, so PyTorch runs them, whatever backend predictions use elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dfer.errors import ConfigError
from dfer.options import EXPLAIN_STAGE_RESOLUTION, EXPLAIN_STAGES

STAGES, STAGE_RESOLUTION = EXPLAIN_STAGES, EXPLAIN_STAGE_RESOLUTION


@dataclass
class WindowExplanation:
    """One window's explanation; arrays are per sampled frame of the clip (T) at the clip's size (S)."""

    index: int  # the window's place in emission order
    target: int  # class explained
    crops: np.ndarray  # (T, S, S, 3) uint8: the face crops the model saw
    gradcam: np.ndarray  # (T, S, S) float32 in [0, 1]
    importance: np.ndarray  # (T,) drop in the target's probability per replaced frame
    spatial_attention: np.ndarray | None = None  # (T', H', W') attention received per position and time step
    temporal_attention: np.ndarray | None = None  # (T', T')
    window: Any = None  # the WindowPrediction, attached once the recogniser has emitted it
    tag: Any = None  # the window's WindowTag (track, start and end frames...), what matches it to its window
    extra: dict[str, Any] = field(default_factory=dict)


def _neighbour_baseline(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, S, S): frame t replaced by the mean of frames t-1 and t+1 (one neighbour at the ends)."""
    prev = torch.cat([x[:, :, 1:2], x[:, :, :-1]], dim=2)  # t-1 (t=0 takes t=1)
    nxt = torch.cat([x[:, :, 1:], x[:, :, -2:-1]], dim=2)  # t+1 (the last takes t-2)
    return (prev + nxt) / 2


class Explainer:
    """Grad-CAM, attention maps and temporal importance of a PyTorch dfer model, clip by clip."""

    def __init__(self, model: torch.nn.Module, class_names: list[str], *, mean, std, temperature: float = 1.0,
                 stage: str = "layer3") -> None:
        from captum.attr import FeatureAblation, LayerGradCam

        if stage not in STAGES:
            raise ConfigError(f"explanation stage must be one of {', '.join(STAGES)}, got {stage!r}")
        backbone = getattr(model, "backbone", None)
        if backbone is None or not hasattr(backbone, stage):
            raise ConfigError(f"this model has no stage {stage!r} (stages: {', '.join(STAGES)})")
        self.model = model.eval()
        self.class_names = list(class_names)
        self.temperature = float(temperature)
        self.stage = stage
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.attention = getattr(model, "attention", None)
        self._gradcam = LayerGradCam(self._logits, getattr(backbone, stage))
        self._ablation = FeatureAblation(self._probs)

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def target_index(self, target: str | None) -> int | None:
        """The class index of `target` (a class name), None for the predicted class."""
        if target is None:
            return None
        if target not in self.class_names:
            raise ConfigError(f"--target {target!r} is not a class of this checkpoint "
                              f"(classes: {', '.join(self.class_names)})")
        return self.class_names.index(target)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits  # (B, K)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self._logits(x) / self.temperature, dim=1)  # (B, K)

    def _attention_maps(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(T', H', W') attention received per key position and time step, (T', T') temporal attention."""
        maps = self.attention.maps if self.attention is not None else {}
        if "spatial" not in maps:
            return None, None
        sp, tm = maps["spatial"][0], maps["temporal"][0]  # (T', H', W', H'W'), (H'W', T', T')
        _, h, w, _ = sp.shape
        received = sp.mean(dim=(1, 2)).reshape(-1, h, w)  # (T', H', W'): mean over the querying positions
        return received.cpu().numpy(), tm.mean(dim=0).cpu().numpy()

    def explain(self, clip: np.ndarray, target: int, index: int = 0) -> WindowExplanation:
        """One normalised clip (3, T, S, S) float32 -> its explanation for class `target`."""
        from captum.attr import LayerAttribution

        device = next(self.model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))[None].to(device)  # (1, 3, T, S, S)
        _, _, t, s, _ = x.shape
        if self.attention is not None:
            self.attention.keep_maps, self.attention.maps = True, {}
        try:
            cam = self._gradcam.attribute(x, target=target, relu_attributions=True)  # (1, 1, T', H', W')
        finally:
            if self.attention is not None:
                self.attention.keep_maps = False
        spatial, temporal = self._attention_maps()
        up = LayerAttribution.interpolate(cam.detach(), (t, s, s), interpolate_mode="trilinear")[0, 0]  # (T, S, S)
        up = up.clamp(min=0)
        peak = float(up.max())
        gradcam = (up / peak if peak > 0 else up).cpu().numpy().astype(np.float32)
        mask = torch.arange(t).view(1, 1, t, 1, 1).expand_as(x)
        with torch.no_grad():
            drop = self._ablation.attribute(x, baselines=_neighbour_baseline(x), target=target, feature_mask=mask,
                                            perturbations_per_eval=t)  # (1, 3, T, S, S), constant per frame
        importance = drop[0, 0, :, 0, 0].cpu().numpy().astype(np.float32)
        crops = clip.transpose(1, 2, 3, 0) * self.std + self.mean  # (T, S, S, 3) in [0, 1]
        crops = np.clip(crops * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return WindowExplanation(index, target, crops, gradcam, importance, spatial, temporal)


class ExplainingBackend:
    """A PyTorch backend that also explains every `every`-th clip it scores, each explanation tagged with
    its window (dfer.inference.windows.WindowTag), so it is matched to the window by what it is."""

    name = "torch"
    concurrency = 1

    def __init__(self, inner, explainer: Explainer, target: int | None, every: int = 1) -> None:
        self.inner, self.explainer, self.target, self.every = inner, explainer, target, max(1, every)
        self.detail = f"{inner.detail} + explanations ({explainer.stage})"
        self.precision = inner.precision
        self.items: list[WindowExplanation] = []
        self.seen = 0

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return self.score_tagged(clips, [None] * len(clips))

    def score_tagged(self, clips: np.ndarray, tags: list) -> np.ndarray:
        logits = self.inner(clips)  # (B, K)
        for clip, row, tag in zip(clips, logits, tags):
            if self.seen % self.every == 0:
                target = int(np.argmax(row)) if self.target is None else self.target
                item = self.explainer.explain(clip, target, self.seen)
                item.tag = tag
                self.items.append(item)
            self.seen += 1
        return logits


@dataclass
class Explanation:
    """What `Recognizer.explain` returns: the predictions and the explained windows."""

    prediction: Any  # VideoPrediction
    items: list[WindowExplanation]
    stage: str
    has_attention: bool
    class_names: list[str]
