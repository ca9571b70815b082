"""Contract of linsim.registry.Registry: register / lookup / replace / duplicate refusal / errors.

The oracle of the property tests is a plain dict driven by the same operations with the rules
written out here (a duplicate is refused unless replace=True, an unknown name is refused).
"""

import importlib
import operator
import pkgutil
from dataclasses import dataclass, is_dataclass
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linsim.registry import Registry, UnknownNameError

NAMES = st.sampled_from(["a", "b", "c", "dd", "e_f"])
OPS = st.lists(st.tuples(st.sampled_from(["register", "replace", "get", "unregister", "setitem", "delitem"]),
                         NAMES, st.integers(-5, 5)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_registry_behaves_like_a_dict_that_refuses_duplicates_and_unknown_names(ops):
    reg = Registry("number", type=int)
    model: dict[str, int] = {}
    for op, name, value in ops:
        if op in ("register", "replace"):
            if op == "register" and name in model:
                with pytest.raises(ValueError, match=f"number '{name}' is already registered"):
                    reg.register(name, value)
                continue
            assert reg.register(name, value, replace=(op == "replace")) == value
            model[name] = value
        elif op == "setitem":
            reg[name] = value
            model[name] = value
        elif op in ("get", "unregister", "delitem"):
            if name not in model:
                with pytest.raises(UnknownNameError) as err:
                    reg.unregister(name) if op == "unregister" else reg[name]
                assert err.value.name == name and err.value.kind == "number"
                assert err.value.known == tuple(model)
                assert str(err.value) == f"unknown number {name!r}; valid: {sorted(model)}"
                continue
            if op == "get":
                assert reg[name] == model[name]
            elif op == "unregister":
                assert reg.unregister(name) == model.pop(name)
            else:
                del reg[name]
                del model[name]
        assert reg.names() == tuple(model) == tuple(reg)  # registration order kept
        assert dict(reg.view()) == model and len(reg) == len(model)
        for n in "abc":
            assert (n in reg) == (n in model)


@given(st.dictionaries(NAMES, st.integers(), max_size=5), NAMES)
def test_unknown_name_error_is_a_key_error_and_a_value_error_listing_the_names(entries, name):
    reg = Registry("widget", entries=entries)
    if name in entries:
        assert reg.lookup(name) == entries[name] == reg.lookup(name, what="f(widget=)")
        return
    for catch in (KeyError, ValueError, UnknownNameError):
        with pytest.raises(catch):
            reg[name]
    with pytest.raises(ValueError) as err:
        reg.lookup(name, what="f(widget=)")
    assert str(err.value) == f"f(widget=) must be one of {tuple(entries)}; got {name!r}"
    assert reg.get(name) is None  # Mapping.get still answers None


def test_a_decorator_registers_what_it_decorates_and_returns_it_unchanged():
    reg = Registry("transform", callable_only=True)

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg["double"] is double and double(4) == 8
    with pytest.raises(ValueError, match="already registered"):
        reg.register("double")(lambda x: x)
    assert reg.register("double", replace=True)(abs) is abs and reg["double"] is abs


def test_entries_are_checked_by_type_callability_own_name_and_the_registry_check():
    @dataclass(frozen=True)
    class Entry:
        name: str
        size: int

    def positive(name, entry):
        if entry.size <= 0:
            raise ValueError(f"{name}: size must be > 0")

    reg = Registry("entry", type=Entry, key=operator.attrgetter("name"), check=positive)
    assert reg.add(Entry("x", 1)) == Entry("x", 1)
    with pytest.raises(TypeError, match=r"entry registry takes Entry entries; got int for 'y'"):
        reg.register("y", 3)
    with pytest.raises(ValueError, match="registered as 'y' carries the name 'z'"):
        reg.register("y", Entry("z", 1))
    with pytest.raises(ValueError, match="y: size must be > 0"):
        reg.add(Entry("y", 0))
    with pytest.raises(ValueError, match="already registered"):
        reg.add(Entry("x", 2))
    with pytest.raises(ValueError, match="non-empty str; got ''"):
        reg.register("", Entry("", 1))
    with pytest.raises(TypeError, match="non-empty str; got 3"):
        reg.register(3, Entry("3", 1))
    with pytest.raises(TypeError, match="must be callable"):
        Registry("hook", callable_only=True).register("h", 3)
    with pytest.raises(TypeError, match=r"entry registry takes Entry entries; got str$"):
        reg.add("x")  # refused before its (missing) name is read
    with pytest.raises(TypeError, match="no key function"):
        Registry("plain").add(1)
    assert reg.names() == ("x",)  # nothing refused was stored


def test_unhashable_names_are_unknown_not_a_crash_and_views_are_read_only():
    reg = Registry("thing", entries={"a": 1})
    assert ["a"] not in reg
    with pytest.raises(UnknownNameError, match=r"unknown thing \['a'\]"):
        reg[["a"]]
    with pytest.raises(TypeError):
        reg.view()["b"] = 2  # type: ignore[index]
    copy = reg.copy()
    copy["b"] = 2
    assert reg.names() == ("a",) and copy.names() == ("a", "b")


def test_tuple_names_and_a_custom_unknown_message():
    reg = Registry("runner", name_type=tuple, unknown="no runner for model={name[0]!r}, optimizer={name[1]!r}",
                   label="a runner for model={name[0]!r}, optimizer={name[1]!r}")
    reg.register(("linear", "gd"), 1)
    with pytest.raises(ValueError, match=r"^a runner for model='linear', optimizer='gd' is already registered"):
        reg.copy().register(("linear", "gd"), 2)  # the copy keeps the messages
    with pytest.raises(ValueError, match=r"no runner for model='linear', optimizer='sgd'; valid: \[\('linear', 'gd'\)\]"):
        reg[("linear", "sgd")]
    with pytest.raises(TypeError, match="names must be non-empty tuple"):
        reg.register("linear", 2)


def test_monkeypatch_setitem_on_a_registry_restores_it(monkeypatch):
    reg = Registry("item", entries={"a": 1})
    with monkeypatch.context() as m:
        m.setitem(reg, "b", 2)
        m.setitem(reg, "a", 3)
        assert dict(reg) == {"a": 3, "b": 2}
    assert dict(reg) == {"a": 1}


# ----------------------------------------------------------------------------- every registry is one
#: Every registry of linsim, by module and attribute (re-exports are found by the scan below).
REGISTRIES = [
    ("linsim.embed", "_OUTPUT_MODELS"), ("linsim.solvers.kernel", "KERNELS"), ("linsim.data", "SPECTRUM_KINDS"),
    ("linsim.data", "INPUT_MODES"), ("linsim.runners", "_REGISTRY"), ("linsim.cli.registry", "_REGISTRY"),
    ("linsim.compare.counterparts", "COUNTERPARTS"), ("linsim.compare.findings", "FACTORS"),
    ("linsim.inpca._eigensolvers", "SOLVERS"), ("linsim.deep.init", "INITS"), ("linsim.deep.data", "DATASETS"),
    ("linsim.deep.normalization", "NORMALIZATIONS"), ("linsim.deep.models", "ACTIVATIONS"),
    ("linsim.deep.models", "ARCHITECTURES"), ("linsim.deep.optim", "OPTIMIZERS"),
    ("linsim.deep.optim", "LR_SCHEDULES"), ("linsim.deep.losses", "LOSSES"),
    ("linsim.deep.schedule", "CHECKPOINT_SCHEDULES"), ("linsim.deep.augment", "AUGMENTATIONS"),
    ("linsim.deep.ensemble", "ENSEMBLES"), ("linsim.parallel", "ENGINES"), ("linsim.deep.grid", "BUILTIN_GRIDS"),
    ("linsim.inpca.distances", "BHATTACHARYYA_KERNELS"),
]

#: Module-level tables that look like registries to the scan but are not a choice offered by name.
NOT_REGISTRIES = {
    ("linsim.deep.config", "_REGISTRIES"): "field -> which registry checks it (lazy imports), not a choice",
    ("linsim.deep.data", "_DTYPES"): "the two storage dtypes, fixed by the file format",
    ("linsim.deep.train", "_TORCH_DTYPES"): "the two storage dtypes, fixed by the file format",
    ("linsim.sweep.axes", "AXIS_INFO"): "symbols and descriptions of EnsembleConfig fields, not a choice",
}

def _linsim_modules():
    import linsim

    for info in pkgutil.walk_packages(linsim.__path__, "linsim."):
        if not info.name.endswith("__main__"):  # running linsim's CLI is no import
            yield importlib.import_module(info.name)


def _looks_like_a_registry(value) -> bool:
    """A name -> entry table whose entries are all functions/classes or named records."""
    if not isinstance(value, (dict, MappingProxyType)) or not value:
        return False
    return all(callable(v) or (is_dataclass(v) and getattr(v, "name", None) == k) for k, v in value.items())


@pytest.mark.parametrize("module, attr", REGISTRIES)
def test_every_linsim_registry_is_a_registry(module, attr):
    assert isinstance(getattr(importlib.import_module(module), attr), Registry), f"{module}.{attr}"


def test_no_module_keeps_a_registry_as_a_plain_dict():
    modules = list(_linsim_modules())
    offenders = [f"{mod.__name__}.{attr}" for mod in modules for attr, value in vars(mod).items()
                 if attr.lstrip("_").isupper() and (mod.__name__, attr) not in NOT_REGISTRIES
                 and _looks_like_a_registry(value)]
    assert not offenders, f"registries kept as plain dicts (make them linsim.registry.Registry): {offenders}"
    assert _looks_like_a_registry({"a": len}) and not _looks_like_a_registry({"a": 1})  # the scan can see one


def test_a_registered_ensemble_engine_is_a_valid_train_config_engine(monkeypatch):
    from linsim.deep import ENGINES, TrainConfig
    from linsim.deep.ensemble import ENSEMBLES, LoopEnsemble

    assert ENGINES == ENSEMBLES.names()  # the built-in engines are the registry's entries

    class SlowLoop(LoopEnsemble):
        pass

    with pytest.raises(ValueError, match=r"TrainConfig.engine must be one of \('vmap', 'loop'\); got 'slow'"):
        TrainConfig(engine="slow")
    monkeypatch.setitem(ENSEMBLES, "slow", SlowLoop)
    assert TrainConfig(engine="slow").engine == "slow"
    with pytest.raises(TypeError, match="must be a subclass of Ensemble"):
        ENSEMBLES.register("dict", dict)


@pytest.mark.parametrize("module, attr", REGISTRIES)
def test_every_linsim_registry_keeps_the_contract(module, attr):
    """Shared contract: duplicates refused, replace keeps the order, unknown names listed, entries checked."""
    reg = getattr(importlib.import_module(module), attr)
    names = reg.names()
    assert names and len(set(names)) == len(names)
    first = names[0]
    entry = reg[first]
    with pytest.raises(ValueError, match="already registered; pass replace=True"):
        reg.register(first, entry)
    assert reg.register(first, entry, replace=True) is entry and reg.names() == names
    missing = ("no", "such") if isinstance(first, tuple) else "no_such_entry"
    with pytest.raises(UnknownNameError) as err:
        reg[missing]
    assert err.value.known == names and all(repr(n) in str(err.value) for n in names)
    with pytest.raises(TypeError):  # every registry says what its entries are
        reg.register(first, object(), replace=True)
    assert reg[first] is entry


def test_unknown_name_errors_survive_pickling_from_a_worker_process():
    import pickle

    with pytest.raises(UnknownNameError) as err:
        Registry("kernel", entries={"rbf": len})["poly"]
    back = pickle.loads(pickle.dumps(err.value))
    assert type(back) is UnknownNameError and str(back) == str(err.value) == "unknown kernel 'poly'; valid: ['rbf']"
    assert (back.kind, back.name, back.known) == ("kernel", "poly", ("rbf",))
