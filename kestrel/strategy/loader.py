"""Finding strategies: built-in names, import paths (`mypkg.mod:MyStrategy`) and the
`kestrel.strategies` entry-point group, so a user's package works without editing Kestrel.

An installed package declares, in its pyproject.toml:

    [project.entry-points."kestrel.strategies"]
    my_strategy = "mypkg.strategies:MyStrategy"
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from pydantic import BaseModel

from kestrel.strategy.plugin import Strategy, StrategyError, strategy_identity
from kestrel.strategy.profiles import BUILTIN_PROFILES, StrategyProfile, canonical_name

ENTRY_POINT_GROUP = "kestrel.strategies"
Origin = Literal["built-in", "installed"]


class StrategyInfo(BaseModel):
    """One row of `kestrel strategy list`."""

    name: str
    version: str
    origin: Origin
    ref: str  # what --strategy accepts
    timeframe: str
    description: str
    identity: str  # name@version#hash with default parameters


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _strategy_class(obj: object, where: str) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise StrategyError(
            f"{where} is {obj!r}, not a subclass of kestrel.strategy.plugin.Strategy"
        )
    return obj


def import_strategy_class(ref: str) -> type[Strategy]:
    """`package.module:ClassName` -> the class; StrategyError says what failed to import."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise StrategyError(f"--strategy {ref!r}: an import path looks like package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a user's module may fail in any way while importing
        raise StrategyError(
            f"--strategy {ref!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise StrategyError(f"--strategy {ref!r}: {module_name} has no {attr}")
        obj = getattr(obj, part)
    return _strategy_class(obj, ref)


def load_strategy(ref: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy `ref` names: a built-in profile (any accepted spelling), an entry point of
    `kestrel.strategies`, or `package.module:Class`."""
    from kestrel.strategy.builtin import ProfileStrategy

    builtin = canonical_name(ref)
    if builtin is not None and builtin in BUILTIN_PROFILES:
        return ProfileStrategy(builtin, params)
    if ":" in ref:
        return import_strategy_class(ref)(params)
    for ep in _entry_points():
        if ep.name == ref:
            try:
                obj = ep.load()
            except Exception as exc:
                raise StrategyError(
                    f"entry point {ref!r} ({ep.value}) fails to import: {type(exc).__name__}: {exc}"
                ) from None
            return _strategy_class(obj, f"entry point {ref!r} ({ep.value})")(params)
    known = [*BUILTIN_PROFILES, *(ep.name for ep in _entry_points())]
    raise StrategyError(
        f"--strategy {ref!r}: no such strategy; known: {', '.join(known)} "
        "(or an import path, package.module:Class)"
    )


def is_plugin_ref(name: str) -> bool:
    """An import path, or the name of an installed entry point (nothing is imported)."""
    if ":" in name:
        module, _, attr = name.partition(":")
        return bool(module.strip()) and bool(attr.strip())
    return any(ep.name == name for ep in _entry_points())


def plugin_profile(ref: str, params: Mapping[str, Any] | None = None) -> StrategyProfile:
    """The profile the live cycle carries for a plugin: its levels and timeframe, plus the
    reference (and parameters) that `strategy_for` loads the plugin back from."""
    strategy = load_strategy(ref, params)
    return strategy.profile().model_copy(
        update={"plugin": ref, "plugin_params": json.dumps(dict(params or {}), sort_keys=True)}
    )


@functools.lru_cache(maxsize=64)
def strategy_for(profile: StrategyProfile) -> Strategy:
    """The strategy a profile runs: its plugin, or the built-in rule over the profile."""
    if profile.plugin is None:
        from kestrel.strategy.builtin import ProfileStrategy

        return ProfileStrategy(profile)
    return load_strategy(profile.plugin, json.loads(profile.plugin_params))


def _info(strategy: Strategy, origin: Origin, ref: str) -> StrategyInfo:
    return StrategyInfo(
        name=strategy.name,
        version=strategy.version,
        origin=origin,
        ref=ref,
        timeframe=strategy.timeframe,
        description=strategy.description,
        identity=strategy_identity(strategy).ref,
    )


def list_strategies() -> tuple[list[StrategyInfo], list[str]]:
    """Built-in and installed strategies, and a problem line per entry point that fails."""
    from kestrel.strategy.builtin import builtin_strategies

    infos = [_info(s, "built-in", name) for name, s in builtin_strategies().items()]
    problems: list[str] = []
    for ep in _entry_points():
        try:
            infos.append(_info(load_strategy(ep.name), "installed", ep.name))
        except StrategyError as exc:
            problems.append(str(exc))
    return infos, problems
