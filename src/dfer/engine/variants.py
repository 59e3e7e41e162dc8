"""The ablation variants `dfer ablate` trains (light: the CLI lists them without importing the trainer)."""

from dfer.models.registry import BASELINES, REGISTRY

# name -> (what it is, config overrides on top of the base config); the baselines as the registry says them
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "full": ("the paper's network: attention + CE + lambda x sparse center loss", []),
    "no_attention": ("without the spatio-temporal attention block", ["model.attention_stage=none"]),
    "ce_only": ("cross-entropy only (lambda 0: no sparse center loss)", ["loss.lam=0"]),
    "lambda_1": ("lambda 1.0: the paper's eq. (6) literally", ["loss.lam=1.0"]),
    **{name: (REGISTRY[name].description, [f"model.name={name}"]) for name in BASELINES},
}
DEFAULT_VARIANTS = ("full", "no_attention", "ce_only", "lambda_1", "r3d_18", "mc3_18")
# --quick: sized for the synthetic benchmark on a 2-core CPU (demo-size clips, a few epochs).
QUICK = ["data.num_frames=8", "data.size=32", "data.batch_size=8", "data.workers=0", "optim.epochs=2",
         "optim.warmup_epochs=0.5", "data.crop_scale=[0.85,1.0]", "data.color_jitter=0.15", "weights=none"]
