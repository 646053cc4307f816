"""The models a hub or worker can run: mcpi's built-ins and the installed plugins.

Models are found through the standard Python plugin mechanism, the ``mcpi.models``
entry-point group: a user's package declares, in its own ``pyproject.toml``::

    [project.entry-points."mcpi.models"]
    my-model = "my_package.models:my_model"

and installing it (the deployment does, into every worker's environment) is all it
takes. Workers run *only* models found this way: a message naming anything else is
refused, never imported. The hub may also run, on its local pool only, a model from a
file or module on its path (``path/to/file.py:name`` or ``package.module:name``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from mcpi.core.model import Model, ModelError, UnknownModel

#: The entry-point group that registers models.
GROUP = "mcpi.models"


@cache
def installed() -> dict[str, Model]:
    """The installed models by name (loaded once per process), and those that failed to load."""
    return dict(_scan()[0])


@cache
def broken() -> dict[str, str]:
    """Entry points of the group that could not be loaded, with the reason."""
    return dict(_scan()[1])


@cache
def _scan() -> tuple[tuple[tuple[str, Model], ...], tuple[tuple[str, str], ...]]:
    found: dict[str, Model] = {}
    failed: dict[str, str] = {}
    for point in entry_points(group=GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001  (a broken plugin must not take the others down)
            failed[point.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not isinstance(loaded, Model):
            failed[point.name] = f"{point.value} is not a model (declare it with @mcpi.model)"
            continue
        if loaded.name != point.name:
            failed[point.name] = f"{point.value} declares the name {loaded.name!r}"
            continue
        found[point.name] = loaded
    return tuple(sorted(found.items())), tuple(sorted(failed.items()))


def resolve(name: str) -> Model:
    """The installed model ``name``; anything else is refused (what workers run)."""
    model = installed().get(name)
    if model is None:
        reason = broken().get(name)
        if reason is not None:
            raise UnknownModel(f"model {name} is installed but cannot be loaded: {reason}")
        raise UnknownModel(f"no model {name!r} is installed (see `mcpi-hub models`)")
    return model


def is_local_spec(spec: str) -> bool:
    """Whether ``spec`` names a model by file or module (``where:attribute``)."""
    return ":" in spec


def load_local(spec: str) -> Model:
    """A model from ``path/to/file.py:name`` or ``package.module:name`` (local pool only)."""
    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise UnknownModel(f"{spec!r}: name a model as FILE.py:NAME or MODULE:NAME")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            if not path.is_file():
                raise UnknownModel(f"no model file {where}")
            module_name = f"mcpi_local_{abs(hash(str(path))):x}"
            module = sys.modules.get(module_name)
            if module is None:
                loader = importlib.util.spec_from_file_location(module_name, path)
                if loader is None or loader.loader is None:
                    raise UnknownModel(f"cannot load {where}")
                module = importlib.util.module_from_spec(loader)
                sys.modules[module_name] = module
                loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001  (a user's module may raise anything on import)
        raise UnknownModel(f"cannot load {where}: {type(exc).__name__}: {exc}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, Model):
        raise UnknownModel(f"{spec} is not a model (declare it with @mcpi.model)")
    return found


def find(spec: str) -> Model:
    """An installed model by name, or a local one by ``where:name``."""
    return load_local(spec) if is_local_spec(spec) else resolve(spec)
