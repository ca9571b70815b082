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
from .augment import AUGMENTATIONS, augment_batch  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .ensemble import ENSEMBLES, Ensemble, LoopEnsemble, VmapEnsemble  # noqa: E402
from .grid import GridEntry, GridSummary, expand_grid, load_grid, result_path, run_grid  # noqa: E402
from .losses import LOSSES  # noqa: E402
from .optim import LR_SCHEDULES, OPTIMIZERS, FunctionalOptimizer, Hyper, make_hyper  # noqa: E402
from .schedule import CHECKPOINT_SCHEDULES, log_schedule, study_schedule  # noqa: E402
from .train import (  # noqa: E402
    GROUPABLE, TrainResult, check_runnable, group_key, run_streams, torch_threads, train, train_group,
)

__all__ += [
    "AUGMENTATIONS", "CHECKPOINT_SCHEDULES", "ENSEMBLES", "LOSSES", "LR_SCHEDULES", "OPTIMIZERS",
    "Ensemble", "FunctionalOptimizer", "GridEntry", "GridSummary", "Hyper", "LoopEnsemble",
    "TrainConfig", "TrainResult", "VmapEnsemble", "augment_batch", "check_runnable",
    "expand_grid", "load_grid", "log_schedule", "make_hyper", "result_path", "run_grid",
    "run_streams", "study_schedule", "torch_threads", "train", "GROUPABLE", "group_key",
    "train_group",
]
