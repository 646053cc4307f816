#!/usr/bin/python
"""Ansible module: build the wheels mcpi workers install from, on the control node.

The workers must run exactly the mcpi version of the control node with exactly its
dependency versions, and must need no package index. This module builds mcpi from the
source tree plus its dependency closure, pinned by the control interpreter's own
``pip freeze``, into a fresh directory, and replaces ``dest`` only when a wheel's bytes
differ — so a second playbook run reports no change. ``SOURCE_DATE_EPOCH`` makes the
mcpi wheel byte-identical for identical sources.

Building costs the better part of a minute (the C kernels, pip resolving the closure),
on every run of every playbook. So what the wheels are built from is recorded beside
them: the interpreter, its ``pip freeze``, the target versions, and a digest of every
file of the source tree and of each model project (what git lists, tracked or not, that
it does not ignore). When all of it is as recorded, the wheels are what a build would
give, and are not built again. A source or model project outside a git work tree, or a
model given as a pip requirement (whose index may have moved on), is built every time.
A build reads a copy of each tree -- of exactly the files git lists, or of all but
earlier builds' output, caches and environments -- so nothing an earlier build left in
the tree ends up in a wheel.

The user's model projects (``models``: local project directories, relative to the mcpi
source tree or absolute, or pip requirements) are built into the same wheelhouse, with
the same pins, so the workers install them beside mcpi; and they are installed into the
control interpreter too (``install_on_hub``), because the hub names a model's code by
its version and digest and runs it on the local pool: hub and workers must have the
same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from email.parser import HeaderParser
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: mcpi_wheelhouse
short_description: Build the pinned wheelhouse for mcpi workers
options:
  python:
    description: Interpreter whose mcpi and dependency versions the workers get.
    type: path
    required: true
  source:
    description: The mcpi source tree to build the worker wheel from.
    type: path
    required: true
  dest:
    description: Directory that receives exactly the wheels of the closure.
    type: path
    required: true
  targets:
    description: >-
      Full Python versions of the worker hosts (e.g. 3.11.2). Dependencies whose
      environment markers select them only there (redis needs async-timeout below
      3.11.3) are added to the wheelhouse.
    type: list
    elements: str
    default: []
  models:
    description: >-
      The user's model projects: directories (absolute, or relative to source) or pip
      requirements. Built into the wheelhouse with their dependencies.
    type: list
    elements: str
    default: []
  install_on_hub:
    description: Install the model projects' wheels into the control interpreter too.
    type: bool
    default: true
"""

WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.*\.whl$")
#: What the wheels in ``dest`` were built from (see the module docstring).
INPUTS_STAMP = ".built-from.json"


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def wheels(directory: str) -> dict[str, str]:
    if not os.path.isdir(directory):
        return {}
    return {
        name: digest(os.path.join(directory, name))
        for name in os.listdir(directory)
        if name.endswith(".whl")
    }


def requirements_of(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def missing_for(built: str, python_full_version: str) -> list[str]:
    """Requirements of mcpi's closure under another Python that ``built`` lacks."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    environment = dict(default_environment())
    environment["python_full_version"] = python_full_version
    environment["python_version"] = ".".join(python_full_version.split(".")[:2])
    wheels_by_name = {}
    for name in os.listdir(built):
        match = WHEEL_NAME.match(name)
        if match:
            wheels_by_name[canonicalize_name(match["name"])] = os.path.join(built, name)
    missing, seen = [], set()
    todo = [("mcpi", "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if name not in wheels_by_name:
            continue
        for text in requirements_of(wheels_by_name[name]):
            requirement = Requirement(text)
            marker_env = dict(environment, extra=extra)
            if requirement.marker and not requirement.marker.evaluate(marker_env):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in wheels_by_name:
                missing.append(f"{requirement.name}{requirement.specifier}")
            todo += [(dependency, "")] + [(dependency, e) for e in requirement.extras]
    return sorted(set(missing))


def listed_files(run_command: Any, directory: str) -> list[str] | None:
    """The files of ``directory`` that a build may read: each one git lists there,
    tracked or untracked but not ignored; None where ``directory`` is not in a git work
    tree (or git is missing), or git lists nothing there (a project in a directory git
    ignores: its files are not what git sees)."""
    try:
        rc, out, _ = run_command(
            [
                "git",
                "-C",
                directory,
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            handle_exceptions=False,
        )
    except OSError:
        return None
    names = sorted(set(out.split("\0")) - {""})
    if rc != 0 or not names:
        return None
    return names


def tree_digest(run_command: Any, directory: str) -> str | None:
    """A digest of :func:`listed_files` of ``directory``, by path, mode and bytes."""
    names = listed_files(run_command, directory)
    if names is None:
        return None
    total = hashlib.sha256()
    for name in names:
        path = os.path.join(directory, name)
        total.update(name.encode() + b"\0")
        if os.path.islink(path):
            total.update(b"link " + os.readlink(path).encode())
        elif os.path.isfile(path):
            total.update(b"%o " % (os.stat(path).st_mode & 0o777) + digest(path).encode())
        else:
            total.update(b"absent")  # tracked, deleted from the work tree
        total.update(b"\0")
    return total.hexdigest()


#: What a copy of a tree git does not list leaves out: earlier builds' output (whose
#: stale files setuptools would put in the wheel), caches, environments, VCS data.
NOT_COPIED = shutil.ignore_patterns(
    "build", "dist", "*.egg-info", "__pycache__", ".git", ".venv*", ".tox", ".nox"
)


def build_copy(run_command: Any, directory: str, into: str) -> str:
    """``into``, holding what a build of ``directory`` reads: a copy of its
    :func:`listed_files`, or of the whole tree but for :data:`NOT_COPIED` where git lists
    nothing. Never the tree itself: setuptools builds in ``build/`` and keeps what it
    finds there, so a module deleted from the source (or a file older than its stale
    copy) would stay in every later wheel."""
    names = listed_files(run_command, directory)
    if names is None:
        shutil.copytree(directory, into, symlinks=True, ignore=NOT_COPIED)
        return into
    for name in names:
        source = os.path.join(directory, name)
        if os.path.islink(source) or os.path.isfile(source):
            target = os.path.join(into, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return into


def tree_digests(run_command: Any, trees: list[str]) -> list[list[str]] | None:
    """[tree, :func:`tree_digest`] of each of ``trees``; None if one has none."""
    digests = []
    for tree in trees:
        tree_key = tree_digest(run_command, tree)
        if tree_key is None:
            return None
        digests.append([tree, tree_key])
    return digests


def built_from(recipe: dict[str, Any], digests: list[list[str]], model_names: list[str]) -> str:
    """The key of a build of ``recipe`` from trees of ``digests`` (:func:`tree_digests`),
    with the ``pip freeze`` lines of the model projects ``model_names`` left out (the hub
    has a build of them installed, which the key must not depend on)."""
    skip = {canonical(n) for n in model_names}
    freeze = [line for line in recipe["freeze"].splitlines() if requirement_name(line) not in skip]
    text = json.dumps({**recipe, "freeze": freeze, "trees": digests}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_stamp(dest: str) -> dict[str, Any]:
    try:
        with open(os.path.join(dest, INPUTS_STAMP)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def model_sources(source: str, models: list[str]) -> list[str]:
    """Each model project as pip takes it: a directory's absolute path, or a requirement."""
    resolved = []
    for item in models:
        path = item if os.path.isabs(item) else os.path.join(source, item)
        resolved.append(os.path.abspath(path) if os.path.isdir(path) else item)
    return resolved


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "python": {"type": "path", "required": True},
            "source": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "targets": {"type": "list", "elements": "str", "default": []},
            "models": {"type": "list", "elements": "str", "default": []},
            "install_on_hub": {"type": "bool", "default": True},
        },
        supports_check_mode=False,
    )
    python, source, dest = (module.params[k] for k in ("python", "source", "dest"))

    def run(argv: list[str], what: str, **env: str) -> str:
        rc, out, err = module.run_command(argv, environ_update=env)
        if rc != 0:
            module.fail_json(msg=f"{what} failed: {err.strip().splitlines()[-1:] or rc}")
        return str(out)

    hub_version = run(
        [python, "-c", "import mcpi; print(mcpi.__version__)"],
        f"reading mcpi's version from {python}",
    ).strip()
    python_version = run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        "reading the Python version",
    ).strip()
    freeze = run([python, "-m", "pip", "freeze", "--exclude", "mcpi"], "pip freeze")

    def pip_wheel(into: str, what: str, *args: str) -> None:
        # SOURCE_DATE_EPOCH: a wheel built from the same sources has the same bytes.
        run(
            [python, "-m", "pip", "wheel", "--quiet", "--wheel-dir", into, *args],
            f"{what} (pip wheel)",
            SOURCE_DATE_EPOCH="315532800",
        )

    models = model_sources(source, module.params["models"])
    recipe = {
        "python": python,
        "version": hub_version,
        "freeze": freeze,
        "targets": module.params["targets"],
        "models": models,
    }
    # Hashed once: the key is made again after the build, with its model names.
    digests = None
    if all(os.path.isdir(m) for m in models):
        digests = tree_digests(module.run_command, [source, *models])
    stamp = read_stamp(dest)
    old = wheels(dest)
    key = None if digests is None else built_from(recipe, digests, stamp.get("models", []))
    if key is not None and old and stamp.get("key") == key:
        finish(module, run, python, dest, hub_version, python_version, old, old, stamp["models"])
        return

    with tempfile.TemporaryDirectory(prefix="mcpi-wheelhouse-") as tmp:
        # Built from copies (of exactly the files a key is made of, where git lists them).
        copies = [
            build_copy(module.run_command, tree, os.path.join(tmp, f"tree-{i}"))
            if os.path.isdir(tree)
            else tree  # a pip requirement
            for i, tree in enumerate([source, *models])
        ]
        build_source, models = copies[0], copies[1:]
        model_names = set()
        if models:
            # The model projects' own names first: the hub may have an older build of
            # one installed, whose pin must not constrain the new one.
            alone = os.path.join(tmp, "models")
            pip_wheel(alone, "building the model projects", "--no-deps", *models)
            model_names = {
                canonical(m["name"]) for m in map(WHEEL_NAME.match, os.listdir(alone)) if m
            }
            # Built once: the closure below takes these wheels as they are.
            models = [os.path.join(alone, name) for name in sorted(os.listdir(alone))]
            freeze = "\n".join(
                line for line in freeze.splitlines() if requirement_name(line) not in model_names
            )
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w") as f:
            f.write(freeze)
        built = os.path.join(tmp, "wheels")
        pip_wheel(
            built, "building the wheelhouse", "--constraint", constraints, build_source, *models
        )
        for target in module.params["targets"]:
            # Repeated until closed: an added wheel may bring requirements of its own.
            while missing := missing_for(built, target):
                run(
                    [
                        python,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--only-binary=:all:",
                        "--dest",
                        built,
                        "--constraint",
                        constraints,
                        *missing,
                    ],
                    f"fetching {', '.join(missing)} for Python {target}",
                )
        check_version(module, source, built, hub_version)
        new = wheels(built)
        stamp_path = os.path.join(dest, INPUTS_STAMP)
        if os.path.exists(stamp_path):
            os.unlink(stamp_path)  # it records an earlier build, until this one is in place
        if new != old:
            os.makedirs(dest, mode=0o755, exist_ok=True)
            for name in old:
                os.unlink(os.path.join(dest, name))
            for name in new:
                shutil.copy2(os.path.join(built, name), os.path.join(dest, name))
                os.chmod(os.path.join(dest, name), 0o644)
    if digests is not None:
        # Keyed again with this build's model names: the next run compares like with like.
        key = built_from(recipe, digests, sorted(model_names))
    if key is not None:
        with open(stamp_path, "w") as f:
            json.dump({"key": key, "models": sorted(model_names)}, f)
    finish(module, run, python, dest, hub_version, python_version, new, old, model_names)


def pins_of(directory: str) -> dict[str, str]:
    """Project name -> version of each wheel in ``directory``."""
    pins = {}
    for name in os.listdir(directory):
        match = WHEEL_NAME.match(name)
        if match:
            pins[match["name"].lower()] = match["version"]
    return pins


def check_version(module: AnsibleModule, source: str, built: str, hub_version: str) -> None:
    built_version = pins_of(built).get("mcpi")
    if built_version != hub_version:
        module.fail_json(
            msg=f"the source tree {source} builds mcpi {built_version}, but the control "
            f"node runs mcpi {hub_version}: reinstall the hub from this tree "
            "(bash scripts/setup) so hub and workers match"
        )


def finish(
    module: AnsibleModule,
    run: Any,
    python: str,
    dest: str,
    hub_version: str,
    python_version: str,
    new: dict[str, str],
    old: dict[str, str],
    model_names: Any,
) -> None:
    """Install the model projects on the hub if asked, and report the wheelhouse."""
    changed = new != old
    model_wheels = sorted(
        name
        for name in new
        if (match := WHEEL_NAME.match(name)) and canonical(match["name"]) in set(model_names)
    )
    hub_installed: list[str] = []
    if module.params["install_on_hub"] and model_wheels:
        hub_installed = install_on_hub(module, run, python, dest, model_wheels, new)
        changed = changed or bool(hub_installed)
    pins = pins_of(dest)
    module.exit_json(
        changed=changed,
        models=model_wheels,
        hub_installed=hub_installed,
        dir=dest,
        version=hub_version,
        python=python_version,
        wheels=sorted(new),
        digests=new,
        requirements=sorted(f"{name}=={version}" for name, version in pins.items()),
    )


def requirement_name(line: str) -> str:
    """The project a ``pip freeze`` line pins (``name==1.0`` or ``name @ file://...``)."""
    match = re.match(r"\s*([A-Za-z0-9._-]+)", line)
    return canonical(match[1]) if match else ""


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name.strip()))


def install_on_hub(
    module: AnsibleModule,
    run: object,
    python: str,
    dest: str,
    names: list[str],
    digests: dict[str, str],
) -> list[str]:
    """Install the model wheels into the control interpreter unless these very bytes are
    there already (a stamp in the wheelhouse records what was installed); their names."""
    stamp = os.path.join(dest, ".installed-on-hub.json")
    try:
        with open(stamp) as f:
            done = json.load(f)
    except (OSError, ValueError):
        done = {}
    wanted = {name: digests[name] for name in names}
    if (
        done.get("python") == python
        and done.get("wheels") == wanted
        and installed(run, python, names)
    ):
        return []
    paths = [os.path.join(dest, n) for n in sorted(names)]
    # Their dependencies from the wheelhouse where missing; then these very wheels,
    # even if a build of the same version is installed.
    run(  # type: ignore[operator]
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", dest, *paths],
        "installing the model projects' dependencies into the control node's Python",
    )
    run(  # type: ignore[operator]
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--force-reinstall",
            *paths,
        ],
        "installing the model projects into the control node's Python",
    )
    with open(stamp, "w") as f:
        json.dump({"python": python, "wheels": wanted}, f)
    return sorted(names)


def installed(run: object, python: str, names: list[str]) -> bool:
    """Whether the control interpreter has each wheel's project at the wheel's version."""
    pins = [m.group("name", "version") for m in map(WHEEL_NAME.match, names) if m]
    script = (
        "import importlib.metadata as m, sys\n"
        "def version(name):\n"
        "    try:\n"
        "        return m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        "print(all(version(n) == v for n, v in zip(sys.argv[1::2], sys.argv[2::2])))"
    )
    answer = run(  # type: ignore[operator]
        [python, "-c", script, *(part for pin in pins for part in pin)],
        "checking the model projects in the control node's Python",
    )
    return str(answer).strip() == "True"


if __name__ == "__main__":
    main()
