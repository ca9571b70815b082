"""Private: one command-line flag per EnsembleConfig field, and the config they describe.

Flags are generated from the dataclass fields, so a new field becomes a flag by itself.
Choices come from the registries that define them (models and optimizers from
:mod:`linsim.runners`, spectra and data modes from :mod:`linsim.data`, kernels from
:mod:`linsim.solvers.kernel`); which flags a (model, optimizer) actually reads comes from the
runner's ``config_fields``, so a flag that would do nothing is refused by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing

__all__: list[str] = []

#: What each field means, in the words of the theory (symbols as in the README).
FIELD_HELP = {
    "model": "what is trained: linear = W x on the squared loss (closed form); kernel = kernel "
             "machine on the squared loss (closed form); softmax = W x on softmax cross-entropy "
             "toward the teacher probabilities (ODE / explicit GD); two_layer = W2 W1 x on the "
             "squared loss (ODE / explicit GD)",
    "optimizer": "gd = gradient descent (integer steps), flow = gradient flow (time lr x step), "
                 "sgd = minibatch SGD (linear model only)",
    "n_samples": "n, number of training inputs",
    "n_test": "number of held-out inputs (0: none)",
    "dim": "d, input dimension",
    "n_classes": "C, number of classes (outputs per sample)",
    "spectrum": "shape of the input-correlation spectrum: geometric lambda_k = lambda_1 e^(-c(k-1)), "
                "power lambda_k = lambda_1 k^(-c)",
    "slope": "c, decay rate of the input-correlation spectrum",
    "lambda_1": "lambda_1, largest input-correlation eigenvalue",
    "data_mode": "exact: the empirical Sigma = X^T X / n has exactly the spectrum; sampled: "
                 "Gaussian inputs with that population spectrum",
    "teacher_scale": "rho, standard deviation of the teacher's entries",
    "init_scale": "sigma_0, standard deviation of the initial weights",
    "n_runs": "R, number of training runs (independent initial weights)",
    "lr": "learning rate (default 1/lambda_1; two_layer: 1/(lambda_1 max(1, 2 s_max(W*)))); "
          "for flow it only sets the time unit t = lr x step",
    "steps": "T, number of training steps (integral floats such as 1e4 are accepted)",
    "n_checkpoints": "K, log-spaced checkpoints after step 0 (duplicates after rounding dropped)",
    "batch_size": "SGD batch size (optimizer sgd only)",
    "kernel": "kernel of model kernel (registered kernels: linsim.solvers.kernel.register_kernel)",
    "kernel_bandwidth": "length scale of the kernel (model kernel; rbf reads it, linear, arccos "
                        "and ntk ignore it)",
    "hidden": "h, hidden width of the two-layer net (model two_layer only)",
    "seed": "seed of the random streams (data, teacher, initial weights, SGD batches)",
}

#: Fields that some values of another field ignore: field -> (other field, values ignoring it).
#: (The runner registry says which fields a model reads; this refines it within a model: the
#: built-in kernels without a length scale ignore the bandwidth, a registered kernel may not.)
FIELD_IGNORED_BY = {"kernel_bandwidth": ("kernel", ("linear", "arccos", "ntk"))}


def _config_class():
    from linsim.ensemble import EnsembleConfig

    return EnsembleConfig


def config_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(_config_class())


def field_types() -> dict[str, typing.Any]:
    return typing.get_type_hints(_config_class())


def field_choices() -> dict[str, tuple[str, ...]]:
    """Allowed values of the string fields, read from the registries that define them."""
    from linsim.data import INPUT_MODES, SPECTRUM_KINDS
    from linsim.solvers.kernel import KERNELS

    try:
        from linsim import runners

        models, optimizers = runners.models(), runners.optimizers()
    except ImportError:  # an older linsim without the runner registry
        from linsim import ensemble

        models, optimizers = ensemble.MODELS, ensemble.OPTIMIZERS
    return {"model": tuple(models), "optimizer": tuple(optimizers), "spectrum": tuple(SPECTRUM_KINDS),
            "data_mode": tuple(INPUT_MODES), "kernel": tuple(KERNELS)}


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


# ----------------------------------------------------------------------------- value parsers
def integer(text: str) -> int:
    """An integer; integral floats (``1e4``, ``100.0``) are accepted, ``1.5`` is refused."""
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if not math.isfinite(value) or value != round(value):
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}")
    return int(round(value))


def positive_integer(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def real(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (the explained-stress threshold χ)."""
    value = real(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1); got {text!r}")
    return value


def optional_real(text: str):
    return None if text.strip().lower() in ("none", "default") else real(text)


def _converter(tp):
    if tp is int:
        return integer
    if tp is float:
        return real
    if tp is str:
        return str
    if type(None) in typing.get_args(tp):
        return optional_real
    raise TypeError(f"no command-line converter for a field of type {tp!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- flags
def add_config_flags(parser: argparse.ArgumentParser, defaults: dict, *, title: str, notes: dict | None = None):
    """Add one flag per config field; ``defaults`` are this command's (shown in the help).

    The flags store nothing unless given (``argparse.SUPPRESS``), so :func:`config_from`
    knows which ones the user set.  ``notes`` adds command-specific text to a field's help.
    """
    group = parser.add_argument_group(title)
    types = field_types()
    choices = field_choices()
    notes = notes or {}
    for f in config_fields():
        text = f.metadata.get("help") or FIELD_HELP.get(f.name) or f"EnsembleConfig.{f.name}"
        if f.name in notes:
            text = f"{text}; {notes[f.name]}"
        default = defaults.get(f.name)
        shown = "" if default is None else f" (default: {default})"
        kwargs = {"dest": f"cfg_{f.name}", "default": argparse.SUPPRESS, "help": text + shown}
        if f.name in choices:
            kwargs["choices"] = choices[f.name]
            kwargs["metavar"] = "{" + ",".join(choices[f.name]) + "}"
        else:
            kwargs["type"] = _converter(types[f.name])
            kwargs["metavar"] = f.name.upper()
        group.add_argument(flag_name(f.name), **kwargs)
    return group


def given_fields(args) -> dict:
    """The config fields the user set on the command line, ``{field: value}``."""
    return {f.name: getattr(args, f"cfg_{f.name}") for f in config_fields() if hasattr(args, f"cfg_{f.name}")}


def unused_fields(config, names) -> list[tuple[str, str]]:
    """``(field, reason)`` for each of ``names`` that ``config``'s model/optimizer would not read."""
    try:
        from linsim import runners
    except ImportError:  # an older linsim without the runner registry
        return []
    entry = runners.get_runner(config.model, config.optimizer)
    used = set(runners.COMMON_FIELDS) | set(entry.config_fields)
    here = f"--model {config.model} --optimizer {config.optimizer}"
    out = []
    for name in names:
        if name not in used:
            readers = [f"{m}/{o}" for (m, o) in runners.registered()
                       if name in runners.get_runner(m, o).config_fields]
            out.append((name, f"{here} does not read it (read by: {', '.join(readers) or 'no model'})"))
        elif name in FIELD_IGNORED_BY:
            other, values = FIELD_IGNORED_BY[name]
            if getattr(config, other) in values:
                out.append((name, f"{flag_name(other)} {getattr(config, other)} ignores it (so do "
                                  f"{', '.join(v for v in values if v != getattr(config, other))})"))
    return out


def config_from(args, defaults: dict, *, swept: tuple[str, ...] = ()):
    """Build and validate the EnsembleConfig of a command: its defaults, then the given flags.

    Raises ``ValueError`` naming a flag that does nothing for the chosen model (``swept``
    fields count as given), or the first invalid field.
    """
    cls = _config_class()
    given = given_fields(args)
    values = {**defaults, **given}
    cfg = cls(**values)
    cfg.validate()
    explicit = [n for n in given if n not in ("model", "optimizer")] + list(swept)
    bad = unused_fields(cfg, explicit)
    if bad:
        name, reason = bad[0]
        what = f"{flag_name(name)}" if name in given else f"--axis {name}"
        raise ValueError(f"{what} does nothing here: {reason}")
    return cfg


# ----------------------------------------------------------------------------- engines
def scheduler_address(text: str) -> str:
    """A Dask scheduler address: ``SCHEME://HOST:PORT`` or ``HOST:PORT`` (argparse type).

    Examples
    --------
    >>> scheduler_address(" tcp://10.0.0.5:8786 ")
    'tcp://10.0.0.5:8786'
    >>> scheduler_address("localhost")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a scheduler address such as tcp://host:8786 or host:8786; got 'localhost'
    """
    import re

    value = text.strip()
    if ":" not in value or not re.fullmatch(r"([a-z][a-z0-9+.-]*://)?[^\s/:]+(:\d+)?(/\S*)?", value):
        raise argparse.ArgumentTypeError(
            f"expected a scheduler address such as tcp://host:8786 or host:8786; got {text!r}")
    return value


def add_engine_flags(parser: argparse.ArgumentParser, *, what: str, default: str,
                     group: argparse._ArgumentGroup | None = None):
    """Add the shared fan-out flags ``--workers N`` and ``--scheduler ADDRESS``.

    Both commands and library read them the same way (:func:`linsim.parallel.get_engine`,
    :func:`linsim.parallel.resolve_scheduler`): the flags win over ``DASK_SCHEDULER_ADDRESS``
    (``--scheduler`` names another cluster, ``--workers N`` asks for local processes), which
    wins over the command's local default.

    Parameters
    ----------
    what : str
        What runs in parallel (``"configurations"``), for the help text.
    default : str
        What happens without either flag, for the help text.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> _ = add_engine_flags(p, what="cells", default="all cores")
    >>> a = p.parse_args(["--workers", "2"])
    >>> a.workers, a.scheduler
    (2, None)
    """
    g = group if group is not None else parser.add_argument_group("parallel execution")
    g.add_argument("--workers", type=positive_integer, default=None, metavar="N",
                   help=f"{what} computed at the same time by N local worker processes, >= 1 "
                        f"(default: {default}; given, it wins over DASK_SCHEDULER_ADDRESS); results "
                        f"do not depend on it")
    g.add_argument("--scheduler", type=scheduler_address, default=None, metavar="ADDRESS",
                   help=f"compute the {what} on the Dask cluster whose scheduler is at ADDRESS "
                        f"(e.g. tcp://host:8786; default: the DASK_SCHEDULER_ADDRESS environment "
                        f"variable when set); needs `pip install 'linsim[dask]'`")
    return g


def engine_options(args) -> dict:
    """``{"n_workers": ..., "scheduler": ...}`` from parsed :func:`add_engine_flags` flags."""
    return {"n_workers": getattr(args, "workers", None), "scheduler": getattr(args, "scheduler", None)}
