"""linsim.deep: deep networks trained with PyTorch, recorded as linsim trajectories.

Data sets (:mod:`linsim.deep.data`), architectures (:mod:`linsim.deep.models`) and weight
initializations (:mod:`linsim.deep.init`) are registries; the trainer
(:class:`TrainConfig`, :func:`train`) trains R seeds of one configuration at once and returns
linsim trajectories.  Every public name is re-exported here.

Examples
--------
>>> import torch
>>> from linsim.deep import load_dataset, build_model, initialize
>>> ds = load_dataset("digits", n_train=32, n_test=8)
>>> net = build_model("cnn", ds.input_shape, ds.n_classes)
>>> _ = initialize(net, "kaiming", generator=torch.Generator().manual_seed(1))
>>> net(torch.as_tensor(ds.X_train[:4])).shape
torch.Size([4, 10])
"""

from .data import (
    DATASETS,
    NORMALIZATIONS,
    DatasetEntry,
    DatasetFileError,
    DeepDataset,
    Normalization,
    RawSplits,
    dataset_signature,
    load_dataset,
    register_dataset,
    synthetic_spectrum,
)
from .init import INITS, InitScheme, initialize, register_init
from .models import (
    ACTIVATIONS,
    ARCHITECTURES,
    MLP,
    AllConvNet,
    ArchitectureEntry,
    ConvMixer,
    DeepLinear,
    LinearModel,
    ViT,
    WideResNet,
    build_model,
    count_parameters,
    register_architecture,
)

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "DATASETS",
    "INITS",
    "NORMALIZATIONS",
    "MLP",
    "AllConvNet",
    "ArchitectureEntry",
    "ConvMixer",
    "DatasetEntry",
    "DatasetFileError",
    "DeepDataset",
    "DeepLinear",
    "InitScheme",
    "LinearModel",
    "Normalization",
    "RawSplits",
    "ViT",
    "WideResNet",
    "build_model",
    "count_parameters",
    "dataset_signature",
    "initialize",
    "load_dataset",
    "register_architecture",
    "register_dataset",
    "register_init",
    "synthetic_spectrum",
]

# --- trainer re-exports (the names are owned by the trainer's modules) -----------------
from .augment import AUGMENTATIONS, Augmentation, augment_batch, augmentation_kind  # noqa: E402
from .config import DTYPES, ENGINES, TrainConfig  # noqa: E402
from .ensemble import ENSEMBLES, Ensemble, LoopEnsemble, VmapEnsemble  # noqa: E402
from .grid import (  # noqa: E402
    BUILTIN_GRIDS, DEFAULT_COMPRESS, GridEntry, GridSummary, builtin_grid_text, expand_grid,
    load_grid, result_path, run_grid,
)
from .losses import LOSSES, cross_entropy, mse, per_sample_loss  # noqa: E402
from .optim import (  # noqa: E402
    LR_SCHEDULES, OPTIMIZERS, SGD, Adam, AdamW, FunctionalOptimizer, Hyper, Nesterov,
    lr_multiplier, make_hyper,
)
from .schedule import CHECKPOINT_SCHEDULES, log_schedule, study_schedule  # noqa: E402
from .schedule import checkpoints as checkpoint_schedule  # noqa: E402
from .train import (  # noqa: E402
    GROUPABLE, TrainResult, check_runnable, group_key, resolve_device, run_streams, torch_threads,
    train, train_group,
)

__all__ += [
    "AUGMENTATIONS", "BUILTIN_GRIDS", "CHECKPOINT_SCHEDULES", "DEFAULT_COMPRESS", "DTYPES",
    "ENGINES", "ENSEMBLES", "GROUPABLE", "LOSSES", "LR_SCHEDULES", "OPTIMIZERS", "SGD", "Adam",
    "AdamW", "Augmentation", "Ensemble", "FunctionalOptimizer", "GridEntry", "GridSummary", "Hyper",
    "LoopEnsemble", "Nesterov", "TrainConfig", "TrainResult", "VmapEnsemble", "augment_batch",
    "augmentation_kind", "builtin_grid_text", "check_runnable", "checkpoint_schedule",
    "cross_entropy", "expand_grid", "group_key", "load_grid", "log_schedule", "lr_multiplier",
    "make_hyper", "mse", "per_sample_loss", "resolve_device", "result_path", "run_grid",
    "run_streams", "study_schedule", "torch_threads", "train", "train_group",
]
