"""Job descriptions: RFC 14 canonical jobspec and its RFC 25 version 1.

`Jobspec` validates and wraps a ``{"resources", "tasks", "attributes",
"version"}`` document; `JobspecV1` adds the version 1 restrictions and the
factories that build jobspecs the way ``flux run`` / ``flux batch`` /
``flux alloc`` do (`JobspecV1.from_command`, `~JobspecV1.per_resource`,
`~JobspecV1.from_nest_command`, `~JobspecV1.from_batch_command`).
`validate_jobspec` checks a JSON jobspec (the job-ingest validator).
`Jobspec.apply_options` and the high-level factories (`~JobspecV1.from_submit`,
`~JobspecV1.from_alloc`, `~JobspecV1.from_batch`) apply the ``flux run``
option languages; their parsers (`filtered_environment`,
`propagated_rlimits`, `parse_dependency`, `constraint_from_query`) are
shared with the command line.

Validation raises `TypeError` for a value of the wrong type and
`ValueError` for a missing, extraneous or out-of-range value, stopping at
the first problem.  Counts are at most ``COUNT_MAX`` (2**31 - 1, a C int
upstream); commands, ``cwd`` and ``environment`` must be what a process can
be given (strings, no NUL, no ``=`` in a variable name).  Constraint hostlists (RFC 31) are checked for type
only: upstream compares them with a live instance's hostlist, which a
client-side validator cannot do; the scheduler rejects impossible ones.

Nothing here talks to a server.  `yaml` and `flux.util` are imported on
first use so that ``import flux.job`` stays cheap.
"""

import json
import math
import os
import re
from collections import abc, defaultdict
from datetime import timedelta

__all__ = ["Jobspec", "JobspecV1", "validate_jobspec"]

_TOP_KEYS = ("resources", "tasks", "attributes", "version")
_TASK_KEYS = ("command", "slot", "count")
_TASK_COUNT_KEYS = ("per_slot", "per_resource", "total")
_RANGE_KEYS = ("min", "max", "operand", "operator")
_RANGE_OPERATORS = ("+", "*", "^")
_NONZERO_TYPES = ("node", "slot", "core")
_CONSTRAINT_NESTED = ("and", "or", "not")
_CONSTRAINT_LEAF = ("properties", "hostlist", "ranks")

# the largest resource count (upstream reads counts as C ints)
COUNT_MAX = (1 << 31) - 1
# a duration must stay below 2**31 s (upstream's expiration arithmetic)
DURATION_LIMIT = 1 << 31
# more tasks than any Linux system can have processes (PID_MAX_LIMIT)
TASKS_MAX = 1 << 22
# "a-b[:operand[:op]]" or "a+[:operand[:op]]"
_COUNT_RANGE = re.compile(
    r"([0-9]+)(?:-([0-9]+)|(\+))(?::([0-9]+)(?::(.))?)?"
)


# ---------------------------------------------------------------------------
# Small validation helpers


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_sequence(value):
    """A list-like value: a Sequence that is not a string."""
    return isinstance(value, abc.Sequence) and not isinstance(
        value, (str, bytes, bytearray)
    )


def _require_keys(mapping, keys):
    for key in keys:
        if key not in mapping:
            raise ValueError(f"Missing key ({key})")


def _reject_extra_keys(mapping, allowed):
    for key in mapping:
        if key not in allowed:
            raise ValueError(f"Extraneous key ({key})")


def _check_toplevel_keys(doc):
    """A jobspec document has exactly the four top-level keys."""
    if not isinstance(doc, abc.Mapping):
        raise TypeError("jobspec must be a mapping")
    _require_keys(doc, _TOP_KEYS)
    _reject_extra_keys(doc, _TOP_KEYS)


# ---------------------------------------------------------------------------
# Resource counts


def _check_range(lo, hi, operand, operator):
    """Check an RFC 14 count range ``{min, max?, operand?, operator?}``."""
    for name, value in (("min", lo), ("max", hi), ("operand", operand)):
        if value is None and name != "min":
            continue
        if not _is_int(value):
            raise TypeError(f"count {name} must be an int")
        if value < 1:
            raise ValueError(f"count {name} must be >= 1")
        if value > COUNT_MAX:
            raise ValueError(f"count {name} must be <= {COUNT_MAX}")
    if hi is not None and hi < lo:
        raise ValueError("count max must be >= min")
    if (operand is None) != (operator is None):
        raise ValueError("count operand and operator must be given together")
    if operator is None:
        return
    if not isinstance(operator, str):
        raise TypeError("count operator must be a string")
    if operator not in _RANGE_OPERATORS:
        raise ValueError(f"invalid count operator '{operator}'")
    if operator in ("*", "^") and operand < 2:
        raise ValueError(f"count operand must be > 1 for operator '{operator}'")
    if operator == "^" and lo < 2:
        raise ValueError("count min must be > 1 for operator '^'")


def _check_range_dict(count):
    _require_keys(count, ("min",))
    _reject_extra_keys(count, _RANGE_KEYS)
    _check_range(count["min"], count.get("max"), count.get("operand"),
                 count.get("operator"))


def _parse_count_string(count):
    """Return the smallest count a count string allows, or raise ValueError.

    Strings are an RFC 22 idset (``"1,4-6"``) or a range
    ``"min-max[:operand[:operator]]"`` / ``"min+[:operand[:operator]]"``.
    """
    m = _COUNT_RANGE.fullmatch(count)
    if m and (m.group(3) or m.group(4)):
        lo = int(m.group(1))
        hi = None if m.group(3) else int(m.group(2))
        operand = None if m.group(4) is None else int(m.group(4))
        operator = m.group(5)
        if operand is not None and operator is None:
            operator = "+"
        _check_range(lo, hi, operand, operator)
        return lo
    from flux.idset import IDset

    try:
        ids = IDset(count)
    except ValueError:
        raise ValueError(f"invalid count string '{count}'") from None
    if not ids:
        raise ValueError("count string must not be empty")
    return ids.first()


def _check_count(rtype, count):
    if _is_int(count):
        minimum = 1 if rtype in _NONZERO_TYPES else 0
        if count < minimum:
            raise ValueError(f"{rtype} count must be >= {minimum}")
        if count > COUNT_MAX:
            raise ValueError(f"{rtype} count must be <= {COUNT_MAX}")
    elif isinstance(count, abc.Mapping):
        _check_range_dict(count)
    elif isinstance(count, str):
        if _parse_count_string(count) < 1 and rtype in _NONZERO_TYPES:
            raise ValueError(f"{rtype} count must be >= 1")
    else:
        raise TypeError(f"{rtype} count must be an int, a mapping or a string")


def _min_count(count):
    """The count a resource contributes when counting: the smallest allowed."""
    if _is_int(count):
        return count
    if isinstance(count, abc.Mapping):
        return count["min"]
    return _parse_count_string(count)


# ---------------------------------------------------------------------------
# Resources, tasks, attributes


def _check_resource(res):
    if not isinstance(res, abc.Mapping):
        raise TypeError("resource must be a mapping")
    _require_keys(res, ("type",))
    rtype = res["type"]
    if not isinstance(rtype, str):
        raise TypeError("resource type must be a string")
    _require_keys(res, ("count",))
    _check_count(rtype, res["count"])
    for key in ("id", "unit", "label"):
        if key in res and not isinstance(res[key], str):
            raise TypeError(f"resource {key} must be a string")
    if "exclusive" in res and not isinstance(res["exclusive"], bool):
        raise TypeError("resource exclusive must be a bool")
    if rtype == "slot" and "label" not in res:
        raise ValueError("slot must have a label")
    if "with" in res:
        children = res["with"]
        if not _is_sequence(children):
            raise TypeError("resource 'with' must be a sequence")
        for child in children:
            _check_resource(child)


def _check_positive_int(value, what):
    if not _is_int(value):
        raise TypeError(f"{what} must be an int")
    if value < 1:
        raise ValueError(f"{what} must be > 0")
    if value > COUNT_MAX:
        raise ValueError(f"{what} must be <= {COUNT_MAX}")


def _check_task_count(count):
    if not isinstance(count, abc.Mapping):
        raise TypeError("task count must be a mapping")
    present = [key for key in _TASK_COUNT_KEYS if key in count]
    if len(present) != 1:
        raise ValueError(
            "task count must have exactly one of per_slot, per_resource, total"
        )
    _reject_extra_keys(count, _TASK_COUNT_KEYS)
    key = present[0]
    value = count[key]
    if key == "per_resource" and isinstance(value, abc.Mapping):
        _require_keys(value, ("type", "count"))
        if not isinstance(value["type"], str):
            raise TypeError("task count per_resource type must be a string")
        value = value["count"]
    _check_positive_int(value, f"task count {key}")


def _check_command(command):
    if not isinstance(command, list):
        raise TypeError("task command must be a list of strings")
    if not command:
        raise TypeError("task command must not be empty")
    for arg in command:
        if not isinstance(arg, str):
            raise TypeError("task command must be a list of strings")
        if "\0" in arg:
            raise ValueError("task command must not contain a NUL character")
    if not command[0]:
        raise ValueError("task command must not start with an empty string")


def _check_task(task):
    if not isinstance(task, abc.Mapping):
        raise TypeError("task must be a mapping")
    _require_keys(task, _TASK_KEYS)
    _check_task_count(task["count"])
    if not isinstance(task["slot"], str):
        raise TypeError("task slot must be a string")
    _check_command(task["command"])
    if "attributes" in task and not isinstance(task["attributes"], abc.Mapping):
        raise TypeError("task attributes must be a mapping")


def _check_dependencies(deps):
    if not _is_sequence(deps):
        raise TypeError("dependencies must be a list")
    for dep in deps:
        if not isinstance(dep, abc.Mapping):
            raise TypeError("dependency must be a mapping")
        _require_keys(dep, ("scheme", "value"))
        for key in ("scheme", "value"):
            if not isinstance(dep[key], str):
                raise TypeError(f"dependency {key} must be a string")


def _check_constraint_values(op, values):
    for value in values:
        if op in _CONSTRAINT_NESTED:
            _check_constraints(value)
        elif op == "ranks":
            _check_rank_constraint(value)
        elif not isinstance(value, str):
            raise TypeError(f"constraint '{op}' values must be strings")


def _check_rank_constraint(value):
    if _is_int(value) and value >= 0:
        return
    if not isinstance(value, str):
        raise TypeError("constraint 'ranks' values must be idset strings")
    from flux.idset import IDset

    try:
        IDset(value)
    except ValueError:
        raise ValueError(f"invalid ranks constraint '{value}'") from None


def _check_constraints(constraints):
    """Check the RFC 31 operator structure of a constraint object."""
    if not isinstance(constraints, abc.Mapping):
        raise TypeError("constraint must be a mapping")
    for op, values in constraints.items():
        if op not in _CONSTRAINT_NESTED and op not in _CONSTRAINT_LEAF:
            raise TypeError(f"unknown constraint operator '{op}'")
        if not _is_sequence(values):
            raise TypeError(f"constraint operator '{op}' requires a list")
        _check_constraint_values(op, values)


def _check_attributes(attributes):
    _reject_extra_keys(attributes, ("system", "user"))
    for key in ("system", "user"):
        if key in attributes and not isinstance(attributes[key], abc.Mapping):
            raise TypeError(f"attributes.{key} must be a mapping")
    system = attributes.get("system", {})
    if "environment" in system:
        _check_environment(system["environment"])
    if "cwd" in system:
        cwd = system["cwd"]
        if not isinstance(cwd, str):
            raise TypeError("attributes.system.cwd must be a string")
        if "\0" in cwd:
            raise ValueError("attributes.system.cwd must not contain a NUL character")
    if "dependencies" in system:
        _check_dependencies(system["dependencies"])
    if "constraints" in system:
        _check_constraints(system["constraints"])


def _check_environment(env):
    """``attributes.system.environment``: names to string values, each a
    variable a process can be given (no ``=`` or NUL in a name, no NUL in a
    value)."""
    what = "attributes.system.environment"
    if not isinstance(env, abc.Mapping):
        raise TypeError(f"{what} must be a mapping")
    for name, value in env.items():
        if not isinstance(value, str):
            raise TypeError(f"{what}: the value of {name!r} must be a string")
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{what}: invalid variable name {name!r}")
        if "\0" in value:
            raise ValueError(f"{what}: the value of {name!r} contains a NUL character")


def _check_toplevel(resources, tasks, attributes, version):
    if not _is_sequence(resources):
        raise TypeError("resources must be a sequence")
    if not _is_sequence(tasks):
        raise TypeError("tasks must be a sequence")
    if not tasks:
        raise ValueError("tasks must not be empty")
    if not isinstance(attributes, abc.Mapping):
        raise TypeError("attributes must be a mapping")
    if not _is_int(version):
        raise TypeError("version must be an int")
    if version < 1:
        raise ValueError("version must be >= 1")


def _walk(resources, parent, count):
    """Yield ``(parent, resource, cumulative count)`` depth-first."""
    for res in resources:
        total = count * _min_count(res["count"])
        yield parent, res, total
        yield from _walk(res.get("with", ()), res, total)


# ---------------------------------------------------------------------------
# Tree helpers for attributes


def _split_key(key):
    if not isinstance(key, str) or not key:
        raise TypeError("attribute key must be a non-empty string")
    return key.split(".")


def _tree_set(root, key, value):
    *parents, last = _split_key(key)
    node = root
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, abc.MutableMapping):
            raise TypeError(f"cannot set {key}: {part} is not a mapping")
        node = child
    node[last] = value


def _tree_get(root, key):
    node = root
    for part in _split_key(key):
        if not isinstance(node, abc.Mapping) or node.get(part) is None:
            raise KeyError(key)
        node = node[part]
    return node


def _tree_delete(root, key, keep):
    """Delete ``key`` if present, then remove the parent dicts it leaves
    empty, except those whose path has ``keep`` components or fewer."""
    parts = _split_key(key)
    chain = [root]
    for part in parts[:-1]:
        child = chain[-1].get(part)
        if not isinstance(child, abc.MutableMapping):
            return
        chain.append(child)
    chain[-1].pop(parts[-1], None)
    for depth in range(len(parts) - 1, keep, -1):
        if chain[depth]:
            break
        del chain[depth - 1][parts[depth - 1]]


def _attr_path(key):
    """Rewrite a user attribute key to a path from the jobspec root."""
    if not isinstance(key, str):
        raise TypeError("attribute key must be a string")
    if not key.startswith(("attributes.", "system.", "user.")):
        key = "system." + key
    if not key.startswith("attributes."):
        key = "attributes." + key
    return key


# ---------------------------------------------------------------------------
# Jobspec


class Jobspec:
    """An RFC 14 canonical jobspec.

    The four objects are validated, then stored without copying in
    ``self.jobspec`` (key order: resources, tasks, attributes, version).
    """

    def __init__(self, resources, tasks, attributes, version):
        _check_toplevel(resources, tasks, attributes, version)
        for res in resources:
            _check_resource(res)
        for task in tasks:
            _check_task(task)
        _check_attributes(attributes)
        self.jobspec = {
            "resources": resources,
            "tasks": tasks,
            "attributes": attributes,
            "version": version,
        }

    # --- loading -----------------------------------------------------------

    @classmethod
    def from_yaml_stream(cls, yaml_stream):
        """Load a jobspec from a YAML (or JSON) string or stream."""
        import yaml

        doc = yaml.safe_load(yaml_stream)
        _check_toplevel_keys(doc)
        return cls(**doc)

    @classmethod
    def from_yaml_file(cls, filename):
        """Load a jobspec from the YAML (or JSON) file ``filename``."""
        with open(filename, "rb") as stream:
            return cls.from_yaml_stream(stream)

    # --- the four sections -------------------------------------------------

    @property
    def resources(self):
        return self.jobspec["resources"]

    @property
    def tasks(self):
        return self.jobspec["tasks"]

    @property
    def attributes(self):
        return self.jobspec["attributes"]

    @property
    def version(self):
        return self.jobspec["version"]

    # --- attributes --------------------------------------------------------

    def setattr(self, key, val):
        """Set attribute ``key``: ``"x"`` means ``attributes.system.x``,
        ``"user.x"`` ``attributes.user.x``; intermediate dicts are made."""
        _tree_set(self.jobspec, _attr_path(key), val)

    def getattr(self, key):
        """Return attribute ``key`` (same rewriting as `setattr`).

        Raises `KeyError` if any component is missing or None.
        """
        return _tree_get(self.jobspec, _attr_path(key))

    def _getattr_or_none(self, key):
        try:
            return self.getattr(key)
        except KeyError:
            return None

    def setattr_shell_option(self, key, val):
        """Set job shell option ``key`` (dotted keys nest)."""
        self.setattr("system.shell.options." + key, val)

    def _shell_option(self, key):
        return self._getattr_or_none("system.shell.options." + key)

    def _del_shell_option(self, key):
        # prune emptied parents, keeping attributes.system itself
        _tree_delete(self.jobspec, "attributes.system.shell.options." + key, 2)

    def add_file(self, path, data, perms=None, encoding=None):
        """Add an RFC 37 file to ``attributes.system.files[path]``.

        ``data`` is file content when it contains a newline or ``encoding``
        is given (default encoding utf-8), a mapping stored as is, or else
        the path of a local file read now (which keeps its own mode).
        ``perms`` defaults to 0o600.
        """
        if not isinstance(data, (str, abc.Mapping)):
            raise TypeError("data must be a Mapping or string")
        from flux.util import Fileref

        if isinstance(data, abc.Mapping):
            data = dict(data)
        elif encoding is None and "\n" in data:
            encoding = "utf-8"
        perms = 0o600 if perms is None else perms
        entry = dict(Fileref(data, perms=perms, encoding=encoding))
        files = self._getattr_or_none("system.files")
        if files is None:
            files = {}
            self.setattr("system.files", files)
        files[path] = entry

    # --- flux run / submit options (since v0.85) ---------------------------

    def apply_options(
        self,
        args=None,
        *,
        prog=None,
        env=None,
        rlimit=None,
        signal=None,
        taskmap=None,
        dependency=None,
        requires=None,
        shell_options=None,
        time_limit=None,
        attributes=None,
        add_file=None,
        _preinit=True,
        **plugin_kw,
    ):
        """Apply ``flux run``-style options in place and return ``self``.

        ``args`` is an `argparse.Namespace` from a submission command; its
        attributes of the same names (plus ``env_remove``, ``env_file``,
        ``setopt``, ``setattr``) fill in keywords left as None.
        ``env`` and ``rlimit`` are rule lists (spec 8.2), applied only when
        passed or when ``args`` is given.  ``signal`` is ``"[SIG][@TIME]"``,
        ``taskmap`` a taskmap spec, ``dependency`` URIs, ``requires``
        RFC 35 queries, ``shell_options``/``attributes`` dicts (a leading
        ``.`` in an attribute key means ``attributes.``), ``time_limit`` a
        duration (a bare number string is minutes), ``add_file`` a list of
        ``[NAME[:PERMS]=]ARG``.  With ``prog`` (``submit``, ``run``...), the
        CLI plugins of that command run last (``flux.cli.plugin``): other
        keywords are their option dests, missing ones take the options'
        defaults, then ``preinit`` (unless ``_preinit`` is false: the CLI
        ran it before sizing the job) and ``modify_jobspec`` run.  Unknown
        keywords raise `TypeError`.  Options are applied in place: on error
        the jobspec may be half updated.
        """
        registry = None
        if prog is not None:
            from flux.cli.plugin import registry_for

            registry = registry_for(prog)
        dests = {o.dest for o in registry.options} if registry else ()
        unknown = sorted(k for k in plugin_kw if k not in dests)
        if unknown:
            raise TypeError("apply_options() got unexpected keyword argument(s): "
                            + ", ".join(repr(k) for k in unknown))
        opts = _option_values(args, locals())
        self._apply_option_values(opts, args is not None)
        _check_attributes(self.attributes)
        if registry is not None and registry.plugins:
            self._run_plugins(registry, args, plugin_kw, _preinit)
        return self

    def _run_plugins(self, registry, args, plugin_kw, preinit):
        """``preinit`` and ``modify_jobspec`` of ``registry``'s plugins on
        a namespace of ``args`` overridden by ``plugin_kw``."""
        from types import SimpleNamespace

        merged = SimpleNamespace(**(vars(args) if args is not None else {}))
        for key, value in plugin_kw.items():
            setattr(merged, key, value)
        registry.fill_defaults(merged)
        if preinit:
            registry.preinit(merged)
        registry.modify_jobspec(merged, self)

    def _apply_option_values(self, opts, from_args):
        if opts["env"] is not None or from_args:
            environment, expand = filtered_environment(opts["env"])
            self.environment = environment
            if expand:
                self.setattr_shell_option("env-expand", expand)
        if opts["rlimit"] is not None or from_args:
            self.setattr_shell_option("rlimit", propagated_rlimits(opts["rlimit"]))
        if opts["time_limit"] is not None:
            self.duration = _parse_time_limit(opts["time_limit"])
        if opts["signal"] is not None:
            self.setattr_shell_option("signal", _parse_signal(opts["signal"]))
        if opts["taskmap"] is not None:
            self.setattr_shell_option("taskmap", _parse_taskmap(opts["taskmap"]))
        if opts["dependency"] is not None:
            deps = _as_list(opts["dependency"], "dependency")
            self.setattr("system.dependencies", [parse_dependency(d) for d in deps])
        if opts["requires"] is not None:
            self.setattr("system.constraints", constraint_from_query(opts["requires"]))
        for key, value in _option_items(opts["shell_options"], "shell_options"):
            self.setattr_shell_option(key, value)
        for key, value in _option_items(opts["attributes"], "attributes"):
            self.setattr(_attribute_key(key), value)
        for spec in _as_list(opts["add_file"] or [], "add_file"):
            name, data, perms = _parse_add_file(spec)
            self.add_file(name, data, perms=perms)

    # --- properties ---------------------------------------------------------

    @property
    def duration(self):
        """Time limit in seconds (0: unlimited), or None if unset.

        Set from int/float seconds, an FSD string (``"1.5m"``) or a
        `timedelta`; stored as a float.
        """
        return self._getattr_or_none("system.duration")

    @duration.setter
    def duration(self, value):
        self.setattr("system.duration", _duration_seconds(value))

    @property
    def cwd(self):
        """Working directory of the job, or None."""
        return self._getattr_or_none("system.cwd")

    @cwd.setter
    def cwd(self, value):
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError("cwd must be a string or path-like object")
        self.setattr("system.cwd", os.fspath(value))

    @property
    def environment(self):
        """Environment of the job (a mapping, stored by reference), or None."""
        return self._getattr_or_none("system.environment")

    @environment.setter
    def environment(self, value):
        if not isinstance(value, abc.Mapping):
            raise ValueError("environment must be a mapping")
        self.setattr("system.environment", value)

    @property
    def queue(self):
        """Target queue name, or None."""
        return self._getattr_or_none("system.queue")

    @queue.setter
    def queue(self, value):
        if not isinstance(value, str):
            raise TypeError("queue must be a string")
        self.setattr("system.queue", value)

    def _get_stdio(self, prefix):
        return self._shell_option(prefix + ".path")

    def _set_stdio(self, prefix, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("path must be a string or path-like object")
        self.setattr_shell_option(prefix + ".type", "file")
        self.setattr_shell_option(prefix + ".path", os.fspath(path))

    stdin = property(
        lambda self: self._get_stdio("input.stdin"),
        lambda self, path: self._set_stdio("input.stdin", path),
        doc="Path of the file redirected to stdin, or None.",
    )
    stdout = property(
        lambda self: self._get_stdio("output.stdout"),
        lambda self, path: self._set_stdio("output.stdout", path),
        doc="Path of the file stdout is redirected to, or None.",
    )
    stderr = property(
        lambda self: self._get_stdio("output.stderr"),
        lambda self, path: self._set_stdio("output.stderr", path),
        doc="Path of the file stderr is redirected to, or None.",
    )
    input = stdin
    output = stdout
    error = stderr

    @property
    def unbuffered(self):
        """True if stdout and stderr are unbuffered."""
        return (
            self._shell_option("output.stdout.buffer.type") == "none"
            and self._shell_option("output.stderr.buffer.type") == "none"
        )

    @unbuffered.setter
    def unbuffered(self, value):
        if not isinstance(value, bool):
            raise TypeError("unbuffered must be a bool")
        if value:
            self.setattr_shell_option("output.stdout.buffer.type", "none")
            self.setattr_shell_option("output.stderr.buffer.type", "none")
            self.setattr_shell_option("output.batch-timeout", 0.05)
            self.setattr_shell_option("input.batch-timeout", 0.0)
            return
        self._del_shell_option("output.stdout.buffer.type")
        self._del_shell_option("output.stderr.buffer.type")
        if self._shell_option("output.batch-timeout") == 0.05:
            self._del_shell_option("output.batch-timeout")
        if self._shell_option("input.batch-timeout") == 0.0:
            self._del_shell_option("input.batch-timeout")

    # --- walking resources --------------------------------------------------

    def __iter__(self):
        """Yield every resource, depth-first, pre-order."""
        for _, res, _ in self.resource_walk():
            yield res

    def resource_walk(self):
        """Yield ``(parent or None, resource, cumulative count)``.

        The cumulative count multiplies the counts from the root down; a
        range or string count contributes its minimum.
        """
        return _walk(self.resources, None, 1)

    def resource_counts(self):
        """Return a defaultdict: resource type -> total count."""
        counts = defaultdict(int)
        for _, res, count in self.resource_walk():
            counts[res["type"]] += count
        return counts

    # --- output -------------------------------------------------------------

    def dumps(self, **kwargs):
        """Return the jobspec as JSON (non-ASCII characters kept).

        A string holding a lone surrogate (Python's stand-in for a byte of
        a non-UTF-8 argument or file name) cannot be sent as UTF-8: the
        text then escapes it (``\\udce9``), so that submitting it gets
        the instance's EINVAL naming the field, not a UnicodeEncodeError.
        """
        text = json.dumps(self.jobspec, ensure_ascii=False, **kwargs)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = json.dumps(self.jobspec, ensure_ascii=True, **kwargs)
        return text

    def __str__(self):
        return str(self.jobspec)

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.resources!r}, {self.tasks!r}, "
            f"attributes={self.attributes!r}, version={self.version!r})"
        )


def _duration_seconds(value):
    """Convert a duration setter argument to float seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        from flux.util import parse_fsd

        seconds = parse_fsd(value)
    elif _is_number(value):
        seconds = float(value)
    else:
        raise TypeError("duration must be a number, a string or a timedelta")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration: {value!r}")
    return seconds


# ---------------------------------------------------------------------------
# JobspecV1 layout helpers


def _resource(rtype, count, children=None, exclusive=False, label=None):
    """A resource dict with keys in canonical order."""
    res = {"type": rtype, "count": count}
    if exclusive:
        res["exclusive"] = True
    if children is not None:
        res["with"] = children
    if label is not None:
        res["label"] = label
    return res


def _task_slot(count, children):
    return _resource("slot", count, children, label="task")


def _check_count_arg(value, what, minimum=1):
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}")


def _optional_mapping(value, what):
    if value is not None and not isinstance(value, abc.Mapping):
        raise ValueError(f"{what} must be a mapping")
    return value


# ---------------------------------------------------------------------------
# JobspecV1


class JobspecV1(Jobspec):
    """A version 1 jobspec (RFC 25): what a Flux instance runs.

    Beyond the `Jobspec` checks: version 1, exactly one task,
    ``attributes.system.duration`` required, a number in [0, 2**31), task
    counts ``per_slot`` or ``total``, resource counts plain ints, and no more
    than ``TASKS_MAX`` tasks in all.  The full RFC 25 shape is left to the
    scheduler.
    """

    def __init__(self, resources, tasks, attributes, version=1):
        super().__init__(resources, tasks, attributes, version)
        if version != 1:
            raise ValueError("version must be 1")
        if len(tasks) != 1:
            raise ValueError("tasks must contain exactly one task")
        self._check_v1_attributes(attributes)
        for task in tasks:
            if "per_resource" in task["count"]:
                raise ValueError("task count per_resource is not supported")
        for res in self:
            if not _is_int(res["count"]):
                raise ValueError("resource count must be an integer")
        self._check_v1_ntasks(resources, tasks[0]["count"], attributes)

    @staticmethod
    def _check_v1_ntasks(resources, count, attributes):
        """Refuse more tasks than a system could ever start at once."""
        if "total" in count:
            ntasks, what = count["total"], "task count total"
        else:
            nslots = sum(n for _parent, res, n in _walk(resources, None, 1)
                         if res["type"] == "slot")
            ntasks = count["per_slot"] * nslots
            what = f"task count per_slot ({count['per_slot']} x {nslots} slots)"
        if ntasks > TASKS_MAX:
            raise ValueError(f"{what}: {ntasks} tasks is more than a system"
                             f" can run (at most {TASKS_MAX})")
        options = ((attributes["system"].get("shell") or {}).get("options")
                   if isinstance(attributes["system"].get("shell"), abc.Mapping)
                   else None)
        per_resource = options.get("per-resource") if isinstance(
            options, abc.Mapping) else None
        if isinstance(per_resource, abc.Mapping) and "count" in per_resource:
            n = per_resource["count"]
            if not _is_int(n) or not 1 <= n <= TASKS_MAX:
                raise ValueError("attributes.system.shell.options.per-resource.count"
                                 f" must be an integer in [1:{TASKS_MAX}]")

    @staticmethod
    def _check_v1_attributes(attributes):
        _require_keys(attributes, ("system",))
        system = attributes["system"]
        if "duration" not in system:
            raise ValueError("attributes.system.duration is a required key")
        duration = system["duration"]
        if not _is_number(duration):
            raise TypeError("duration must be a number")
        # compared as is: math.isfinite() of a huge int raises OverflowError
        if not 0 <= duration < DURATION_LIMIT:  # false for NaN too
            raise ValueError("attributes.system.duration must be a finite number"
                             f" >= 0 and < {DURATION_LIMIT}")

    # --- factories ----------------------------------------------------------

    @classmethod
    def _from_layout(cls, command, resources, task_count):
        tasks = [{"command": command, "slot": "task", "count": task_count}]
        return cls(resources, tasks, attributes={"system": {"duration": 0}})

    @classmethod
    def from_command(
        cls,
        command,
        num_tasks=1,
        cores_per_task=1,
        gpus_per_task=None,
        num_nodes=None,
        exclusive=False,
        duration=None,
        environment=None,
        env_expand=None,
        cwd=None,
        rlimits=None,
        name=None,
        input=None,
        output=None,
        error=None,
        label_io=False,
        unbuffered=False,
        queue=None,
        bank=None,
    ):
        """Build the jobspec ``flux run`` would: ``num_tasks`` slots of
        ``cores_per_task`` cores (and ``gpus_per_task`` GPUs), optionally
        spread over ``num_nodes`` nodes, one task per slot.

        The environment defaults to a copy of ``os.environ``; ``cwd`` is
        never defaulted.
        """
        _check_count_arg(num_tasks, "task count")
        _check_count_arg(cores_per_task, "cores per task")
        if gpus_per_task is not None:
            _check_count_arg(gpus_per_task, "gpus per task", minimum=0)
        if num_nodes is not None:
            _check_count_arg(num_nodes, "node count")
            if num_nodes > num_tasks:
                raise ValueError("node count must not be greater than task count")
        elif exclusive:
            raise ValueError("exclusive can only be set with a node count")

        children = [_resource("core", cores_per_task)]
        if gpus_per_task:
            children.append(_resource("gpu", gpus_per_task))
        if num_nodes is None:
            resources = [_task_slot(num_tasks, children)]
            task_count = {"per_slot": 1}
        else:
            slots_per_node = -(-num_tasks // num_nodes)
            slot = _task_slot(slots_per_node, children)
            resources = [_resource("node", num_nodes, [slot], exclusive)]
            if num_tasks % num_nodes == 0:
                task_count = {"per_slot": 1}
            else:
                task_count = {"total": num_tasks}

        jobspec = cls._from_layout(command, resources, task_count)
        jobspec._apply_command_options(
            duration=duration,
            environment=environment,
            env_expand=env_expand,
            cwd=cwd,
            rlimits=rlimits,
            name=name,
            input=input,
            output=output,
            error=error,
            label_io=label_io,
            unbuffered=unbuffered,
            queue=queue,
            bank=bank,
        )
        return jobspec

    def _apply_command_options(
        self,
        *,
        duration=None,
        environment=None,
        env_expand=None,
        cwd=None,
        rlimits=None,
        name=None,
        input=None,
        output=None,
        error=None,
        label_io=False,
        unbuffered=False,
        queue=None,
        bank=None,
    ):
        """Apply the `from_command` keyword options, in the documented order."""
        if duration is not None:
            self.duration = duration
        if environment is None:
            environment = dict(os.environ)
        self.environment = _optional_mapping(environment, "environment")
        if _optional_mapping(env_expand, "env_expand") is not None:
            self.setattr_shell_option("env-expand", env_expand)
        if cwd is not None:
            self.cwd = cwd
        if _optional_mapping(rlimits, "rlimits") is not None:
            self.setattr_shell_option("rlimit", rlimits)
        if name is not None:
            self.setattr("system.job.name", name)
        if input is not None:
            self.stdin = input
        if output is not None and output not in ("none", "kvs"):
            self.stdout = output
        if error is not None and error not in ("none", "kvs"):
            self.stderr = error
        if label_io:
            self.setattr_shell_option("output.stdout.label", True)
            self.setattr_shell_option("output.stderr.label", True)
        if unbuffered:
            self.unbuffered = unbuffered  # the setter rejects non-bools
        if queue is not None:
            self.queue = queue
        if bank is not None:
            self.setattr("system.bank", bank)

    @classmethod
    def per_resource(
        cls,
        command,
        ncores=None,
        nnodes=None,
        per_resource_type=None,
        per_resource_count=None,
        gpus_per_node=None,
        exclusive=False,
        **kwargs,
    ):
        """Build a jobspec that runs ``per_resource_count`` tasks per
        ``per_resource_type`` (``"node"`` or ``"core"``) allocated.

        ``nnodes`` and ``ncores``: ``node>slot(1)>core(ncores/nnodes)``;
        ``ncores`` only: ``slot(ncores)>core(1)``; ``nnodes`` only (needs
        ``exclusive``): whole nodes.  Other keywords are `from_command`'s
        options (duration, environment, cwd, ...).
        """
        _check_per_resource_args(
            ncores, nnodes, per_resource_type, per_resource_count,
            gpus_per_node, exclusive,
        )
        resources = _per_resource_layout(ncores, nnodes, gpus_per_node, exclusive)
        jobspec = cls._from_layout(command, resources, {"per_slot": 1})
        jobspec._apply_command_options(**kwargs)
        if per_resource_type is not None:
            jobspec.setattr_shell_option(
                "per-resource",
                {"type": per_resource_type, "count": per_resource_count},
            )
        return jobspec

    @classmethod
    def from_nest_command(
        cls,
        command,
        num_slots=1,
        cores_per_slot=1,
        gpus_per_slot=None,
        num_nodes=None,
        broker_opts=None,
        exclusive=False,
        conf=None,
        **kwargs,
    ):
        """Build a jobspec that starts a Flux instance (one broker per node)
        running ``command`` as its initial program.  ``conf`` (a mapping)
        becomes the instance's ``conf.json``."""
        broker_opts = list(broker_opts or [])
        if conf is not None:
            broker_opts.append("-c{{tmpdir}}/conf.json")
        jobspec = cls.from_command(
            ["flux", "broker", *broker_opts, *command],
            num_tasks=num_slots,
            cores_per_task=cores_per_slot,
            gpus_per_task=gpus_per_slot,
            num_nodes=num_nodes,
            exclusive=exclusive,
            **kwargs,
        )
        jobspec.setattr_shell_option("per-resource.type", "node")
        jobspec.setattr_shell_option("mpi", "none")
        jobspec.setattr_shell_option("exit-timeout", "none")
        if conf is not None:
            jobspec.add_file("conf.json", conf)
        return jobspec

    @classmethod
    def from_batch_command(
        cls,
        script,
        jobname,
        args=None,
        num_slots=1,
        cores_per_slot=1,
        gpus_per_slot=None,
        num_nodes=None,
        broker_opts=None,
        exclusive=False,
        conf=None,
        **kwargs,
    ):
        """Build a batch job: a Flux instance running the script *text*
        ``script`` (which must start with ``#!``) with ``args``."""
        if not script.startswith("#!"):
            raise ValueError(f"{jobname} does not appear to start with '#!'")
        jobspec = cls.from_nest_command(
            ["{{tmpdir}}/script", *(args or [])],
            num_slots=num_slots,
            cores_per_slot=cores_per_slot,
            gpus_per_slot=gpus_per_slot,
            num_nodes=num_nodes,
            broker_opts=broker_opts,
            exclusive=exclusive,
            conf=conf,
            name=jobname,
            **kwargs,
        )
        jobspec.add_file("script", script, perms=0o700, encoding="utf-8")
        return jobspec

    # --- high-level factories (since v0.85) ----------------------------------

    @classmethod
    def from_submit(
        cls,
        command,
        *,
        ntasks=1,
        nodes=None,
        cores_per_task=1,
        gpus_per_task=None,
        exclusive=False,
        name=None,
        queue=None,
        bank=None,
        cwd=None,
        output=None,
        error=None,
        input=None,
        label_io=False,
        unbuffered=False,
        **apply_kw,
    ):
        """The jobspec ``flux submit`` builds: `from_command` (``cwd``
        defaulting to the current directory) then `apply_options`, with
        the environment and resource limits always propagated."""
        jobspec = cls.from_command(
            command,
            num_tasks=ntasks,
            cores_per_task=cores_per_task,
            gpus_per_task=gpus_per_task,
            num_nodes=nodes,
            exclusive=exclusive,
            name=name,
            queue=queue,
            bank=bank,
            cwd=os.getcwd() if cwd is None else cwd,
            output=output,
            error=error,
            input=input,
            label_io=label_io,
            unbuffered=unbuffered,
        )
        return jobspec.apply_options(prog="submit", **_propagating(apply_kw))

    @classmethod
    def from_alloc(
        cls,
        *,
        nslots=None,
        nodes=None,
        cores_per_slot=1,
        gpus_per_slot=None,
        exclusive=False,
        broker_opts=None,
        conf=None,
        bg=False,
        name=None,
        queue=None,
        bank=None,
        cwd=None,
        output=None,
        error=None,
        input=None,
        label_io=False,
        unbuffered=False,
        **kw,
    ):
        """The jobspec of a new instance of ``nslots`` slots (or ``nodes``
        whole nodes) with no initial program (spec 29.2); with ``bg`` it
        runs until shut down (``-Sbroker.rc2_none=1``, output captured
        through a pty).  It never asks for an interactive terminal: the
        ``flux alloc`` command does, when its stdin is one."""
        if nslots is None and nodes is None:
            raise ValueError("from_alloc() requires nslots or nodes")
        return cls._alloc_command(
            [], bg=bg, nslots=nslots, nodes=nodes, cores_per_slot=cores_per_slot,
            gpus_per_slot=gpus_per_slot, exclusive=exclusive,
            broker_opts=broker_opts, conf=conf, name=name, queue=queue,
            bank=bank, cwd=cwd, output=output, error=error, input=input,
            label_io=label_io, unbuffered=unbuffered, **kw)

    @classmethod
    def _alloc_command(cls, command, *, bg, nslots, nodes, cores_per_slot,
                       gpus_per_slot, exclusive, broker_opts, conf, cwd, **kw):
        """``from_alloc`` with an initial program (``flux alloc CMD``): not
        part of the public API."""
        nslots, exclusive = _slots_and_exclusive(nslots, nodes, exclusive)
        broker_opts = list(broker_opts or [])
        if bg and not command:
            broker_opts.append("-Sbroker.rc2_none=1")
        layout = {k: kw.pop(k) for k in ("name", "queue", "bank", "output",
                                         "error", "input", "label_io",
                                         "unbuffered") if k in kw}
        jobspec = cls.from_nest_command(
            list(command),
            num_slots=nslots,
            cores_per_slot=cores_per_slot,
            gpus_per_slot=gpus_per_slot,
            num_nodes=nodes,
            broker_opts=broker_opts,
            exclusive=exclusive,
            conf=_batch_conf(conf),
            cwd=os.getcwd() if cwd is None else cwd,
            **layout,
        )
        if bg:
            jobspec.setattr_shell_option("pty.capture", 1)
        return jobspec.apply_options(prog="alloc", **_propagating(kw))

    @classmethod
    def from_batch(
        cls,
        script=None,
        *,
        content=None,
        nslots=None,
        nodes=None,
        cores_per_slot=1,
        gpus_per_slot=None,
        exclusive=False,
        broker_opts=None,
        conf=None,
        wrap=False,
        name=None,
        queue=None,
        bank=None,
        cwd=None,
        output=None,
        error=None,
        input=None,
        label_io=False,
        unbuffered=False,
        **kw,
    ):
        """The jobspec of a batch job (spec 29.2): the script at path
        ``script`` (read as UTF-8) or the text ``content`` runs as the
        initial program of a new instance (``wrap`` prepends ``#!/bin/sh``
        to a script without one).  One slot unless ``nslots`` or ``nodes``
        says otherwise; output to ``flux-{{id}}.out``; named after the
        script's file (``"batch"`` for ``content``)."""
        if script is not None and content is not None:
            raise TypeError("from_batch() accepts 'script' or 'content', not both")
        if script is None and content is None:
            raise TypeError("from_batch() requires 'script' (file path) or "
                            "'content' (inline script)")
        if script is not None:
            with open(script, encoding="utf-8") as fp:
                content = fp.read()
            default_name = os.path.basename(os.fspath(script))
        else:
            default_name = "batch"
        if wrap and not content.startswith("#!"):
            content = "#!/bin/sh\n" + content
        if nslots is None and nodes is None:
            nslots = 1
        return cls._batch_script(
            content, default_name if name is None else name, [],
            nslots=nslots, nodes=nodes, cores_per_slot=cores_per_slot,
            gpus_per_slot=gpus_per_slot, exclusive=exclusive,
            broker_opts=broker_opts, conf=conf, queue=queue, bank=bank,
            cwd=cwd, output=output, error=error, input=input,
            label_io=label_io, unbuffered=unbuffered, **kw)

    @classmethod
    def _batch_script(cls, content, name, args, *, nslots, nodes, cores_per_slot,
                      gpus_per_slot, exclusive, broker_opts, conf, cwd, output,
                      **kw):
        """``from_batch`` with script arguments (``flux batch SCRIPT
        ARGS``): not part of the public API."""
        nslots, exclusive = _slots_and_exclusive(nslots, nodes, exclusive)
        layout = {k: kw.pop(k) for k in ("queue", "bank", "error", "input",
                                         "label_io", "unbuffered") if k in kw}
        jobspec = cls.from_batch_command(
            content,
            name,
            args=args,
            num_slots=nslots,
            cores_per_slot=cores_per_slot,
            gpus_per_slot=gpus_per_slot,
            num_nodes=nodes,
            broker_opts=broker_opts,
            exclusive=exclusive,
            conf=_batch_conf(conf),
            cwd=os.getcwd() if cwd is None else cwd,
            output="flux-{{id}}.out" if output is None else output,
            **layout,
        )
        return jobspec.apply_options(prog="batch", **_propagating(kw))


def _batch_conf(conf):
    """``conf`` of from_alloc/from_batch (dict, BatchConfig or str) as a dict."""
    from flux.job.batchconfig import BatchConfig

    return BatchConfig.normalize(conf)


def _check_per_resource_args(
    ncores, nnodes, per_resource_type, per_resource_count, gpus_per_node, exclusive
):
    if (per_resource_type is None) != (per_resource_count is None):
        raise ValueError(
            "per_resource_type and per_resource_count must be given together"
        )
    if per_resource_type is not None:
        if per_resource_type not in ("node", "core"):
            raise ValueError("per_resource_type must be 'node' or 'core'")
        _check_count_arg(per_resource_count, "per_resource_count")
    if nnodes is None:
        if gpus_per_node is not None:
            raise ValueError("gpus_per_node requires nnodes")
        if exclusive:
            raise ValueError("exclusive requires nnodes")
    else:
        _check_count_arg(nnodes, "node count")
    if ncores is not None:
        _check_count_arg(ncores, "core count")
    if gpus_per_node is not None:
        _check_count_arg(gpus_per_node, "gpus per node", minimum=0)
    if ncores is None and nnodes is None:
        raise ValueError("ncores or nnodes is required")
    if ncores is None and not exclusive:
        raise ValueError("nnodes without ncores requires exclusive")
    if ncores is not None and nnodes is not None:
        if ncores < nnodes:
            raise ValueError("ncores must be >= nnodes")
        if ncores % nnodes:
            raise ValueError("ncores must be a multiple of nnodes")


def _per_resource_layout(ncores, nnodes, gpus_per_node, exclusive):
    if nnodes is None:
        return [_task_slot(ncores, [_resource("core", 1)])]
    cores = 1 if ncores is None else ncores // nnodes
    children = [_resource("core", cores)]
    if gpus_per_node:
        children.append(_resource("gpu", gpus_per_node))
    slot = _task_slot(1, children)
    return [_resource("node", nnodes, [slot], exclusive)]


def _propagating(apply_kw):
    """High-level factories always propagate environment and rlimits."""
    apply_kw = dict(apply_kw)
    for key in ("env", "rlimit"):
        if apply_kw.get(key) is None:
            apply_kw[key] = []
    return apply_kw


def _slots_and_exclusive(nslots, nodes, exclusive):
    """``nodes`` alone means one exclusive slot per node."""
    if nslots is None:
        if nodes is None:
            raise ValueError("nslots or nodes is required")
        return nodes, True
    return nslots, exclusive


# ---------------------------------------------------------------------------
# apply_options helpers (the flux run/submit/batch/alloc option languages)

# Limits that `flux run` does not propagate unless asked (spec 8.2).
_RLIMIT_SKIP = ("memlock", "ofile", "msgqueue", "nice", "rtprio", "rttime",
                "sigpending")

_DEPENDENCY_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)(?::([^?]*))?(?:\?(.*))?")
_BARE_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_ADD_FILE_NAME = re.compile(r"([^=:\n/]+)(?::([0-7]+))?=(.*)", re.DOTALL)


def _as_list(value, what):
    """Accept one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    if not _is_sequence(value) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a string or a list of strings")
    return list(value)


def _matcher(pattern):
    """Return a predicate for a glob pattern or a ``/regex/``."""
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        regex = re.compile(pattern[1:-1])
        return lambda name: regex.search(name) is not None
    from fnmatch import fnmatchcase

    return lambda name: fnmatchcase(name, pattern)


def _read_rule_file(path):
    with open(path, encoding="utf-8") as fp:
        return [
            line.strip()
            for line in fp
            if line.strip() and not line.lstrip().startswith("#")
        ]


def _apply_env_rule(env, expand, rule, environ):
    if rule.startswith("-"):
        match = _matcher(rule[1:])
        for name in [n for n in env if match(n)]:
            del env[name]
    elif rule.startswith("^"):
        for sub_rule in _read_rule_file(rule[1:]):
            _apply_env_rule(env, expand, sub_rule, environ)
    elif "=" in rule:
        name, value = rule.split("=", 1)
        if "{{" in value:
            env.pop(name, None)
            expand[name] = value
            return
        from string import Template

        try:
            env[name] = Template(value).substitute(env)
        except KeyError as exc:
            raise ValueError(f"--env: Variable {exc} not found in {rule}") from None
        except ValueError as exc:
            raise ValueError(f"--env: {exc} in {rule}") from None
    else:
        match = _matcher(rule)
        env.update((n, v) for n, v in environ.items() if match(n))


def filtered_environment(rules, environ=None):
    """Apply ``--env`` rules to a copy of ``environ`` (default `os.environ`).

    Returns ``(environment, env_expand)``: values holding ``{{...}}``
    templates go to the second mapping (shell option ``env-expand``).
    Rules: ``-PATTERN`` removes, ``PATTERN`` imports from ``environ``,
    ``VAR=VALUE`` sets (``$VAR`` substituted), ``^FILE`` reads more rules.
    Patterns are globs or ``/regex/``.
    """
    environ = dict(os.environ if environ is None else environ)
    env, expand = dict(environ), {}
    for rule in rules or ():
        _apply_env_rule(env, expand, rule, environ)
    return env, expand


def _rlimit_names():
    import resource

    return {
        name[len("RLIMIT_"):].lower(): getattr(resource, name)
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    }


def _rlimit_current(resource_id):
    import resource

    soft, _ = resource.getrlimit(resource_id)
    return -1 if soft == resource.RLIM_INFINITY else soft


def _rlimit_value(rule, text):
    if text in ("unlimited", "infinity", "inf"):
        return -1
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--rlimit: invalid value in '{rule}'") from None
    if value < -1:
        raise ValueError(f"--rlimit: invalid value in '{rule}'")
    return value


def propagated_rlimits(rules=None):
    """Return the shell ``rlimit`` option: this process's soft limits
    (lowercase names, -1 for unlimited) minus those `flux run` skips,
    adjusted by ``--rlimit`` rules (``-NAME``, ``NAME``, ``NAME=VALUE``;
    names may be globs)."""
    names = _rlimit_names()
    limits = {
        name: _rlimit_current(names[name])
        for name in sorted(names)
        if name not in _RLIMIT_SKIP
    }
    for rule in rules or ():
        if rule.startswith("-"):
            match = _matcher(rule[1:])
            for name in [n for n in limits if match(n)]:
                del limits[name]
            continue
        name, sep, value = rule.partition("=")
        match = _matcher(name)
        matched = [n for n in sorted(names) if match(n)]
        if not matched:
            raise ValueError(f"--rlimit: invalid rlimit name '{name}'")
        for match in matched:
            if sep:
                limits[match] = _rlimit_value(rule, value)
            else:
                limits[match] = _rlimit_current(names[match])
    return limits


def _parse_signal(spec):
    """``[SIG][@TIME]`` -> ``{"signum": n, "timeleft": seconds}``."""
    import signal as signal_module

    if not isinstance(spec, str):
        raise TypeError("signal must be a string")
    sig, _, when = spec.partition("@")
    signum = signal_module.SIGUSR1
    if sig:
        if sig.isdigit():
            signum = int(sig)
        else:
            name = sig.upper()
            if not name.startswith("SIG"):
                name = "SIG" + name
            signum = getattr(signal_module, name, None)
            if not isinstance(signum, int) or name.startswith("SIG_"):
                raise ValueError(f"signal: invalid signal '{sig}'")
        if not 0 < int(signum) < signal_module.NSIG:
            raise ValueError(f"signal: invalid signal '{sig}'")
    timeleft = 60
    if when:
        from flux.util import parse_fsd

        timeleft = parse_fsd(when)
        if math.isinf(timeleft):
            raise ValueError(f"signal: invalid time '{when}'")
    return {"signum": int(signum), "timeleft": timeleft}


def _parse_taskmap(spec):
    """``block|cyclic[:N]|manual:MAP|hostfile:FILE|SCHEME[:VALUE]``."""
    if not isinstance(spec, str):
        raise TypeError("taskmap must be a string")
    scheme, _, value = spec.partition(":")
    if not scheme:
        raise ValueError(f"taskmap: invalid taskmap '{spec}'")
    if scheme == "cyclic" and value and not (value.isdigit() and int(value) > 0):
        raise ValueError(f"taskmap: invalid cyclic value '{value}'")
    if scheme == "hostfile":
        if not value:
            raise ValueError("taskmap: hostfile requires a file name")
        from flux.hostlist import Hostlist

        with open(value, encoding="utf-8") as fp:
            hosts = [line.strip() for line in fp if line.strip()]
        value = Hostlist(hosts).encode()
    return {"scheme": scheme, "value": value}


def parse_dependency(uri):
    """``scheme[:value][?k=v&...]`` -> ``{"scheme", "value", **query}``
    (a bare scheme such as ``singleton`` has the value ``""``); numeric
    query values become ints."""
    m = _DEPENDENCY_URI.fullmatch(uri)
    if not m:
        raise ValueError(f"dependency: invalid dependency URI '{uri}'")
    dep = {"scheme": m.group(1), "value": m.group(2) or ""}
    if m.group(3):
        from urllib.parse import parse_qsl

        for key, value in parse_qsl(m.group(3), keep_blank_values=True):
            dep[key] = int(value) if value.isdigit() else value
    return dep


def _parse_add_file(spec):
    """``[NAME[:PERMS]=]ARG`` -> ``(name, data, perms)``."""
    m = _ADD_FILE_NAME.fullmatch(spec)
    if m:
        name, perms, data = m.group(1), m.group(2), m.group(3)
        return name, data, None if perms is None else int(perms, 8)
    if "\n" in spec:
        raise ValueError("add_file: file content needs a NAME=")
    return os.path.basename(spec), spec, None


def _parse_time_limit(value):
    """A bare number is minutes (as ``flux run -t``); else FSD or a
    duration accepted by the `Jobspec.duration` setter."""
    if isinstance(value, str) and _BARE_NUMBER.fullmatch(value):
        return float(value) * 60.0
    return value


def _attribute_key(key):
    """`apply_options` attribute keys: a leading ``.`` means
    ``attributes.``; otherwise the `Jobspec.setattr` rules."""
    if key.startswith("."):
        return "attributes" + key
    return key


def constraint_from_query(queries):
    """Translate RFC 35 query strings (``--requires``) into one RFC 31
    constraint object; several queries are joined with spaces (and-ed).
    ValueError ``--requires='...': why`` (``flux.constraint.parser``)."""
    from flux.constraint.parser import requires_constraint

    return requires_constraint(_as_list(queries, "requires"))


_OPTION_NAMES = ("env", "rlimit", "signal", "taskmap", "dependency", "requires",
                 "shell_options", "time_limit", "attributes", "add_file")


def _option_values(args, given):
    """Merge `apply_options` keywords with an argparse namespace."""
    opts = {name: given[name] for name in _OPTION_NAMES}
    if args is None:
        return opts
    for name in _OPTION_NAMES:
        if opts[name] is None:
            opts[name] = getattr(args, name, None)
    env = list(opts["env"] or [])
    env += ["-" + p for p in getattr(args, "env_remove", None) or []]
    env += ["^" + f for f in getattr(args, "env_file", None) or []]
    opts["env"] = env
    if opts["shell_options"] is None:
        opts["shell_options"] = _parse_kv_list(getattr(args, "setopt", None))
    if opts["attributes"] is None:
        opts["attributes"] = _parse_kv_list(getattr(args, "setattr", None),
                                            files=True)
    return opts


def _json_or_string(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_kv_list(items, files=False):
    """``["K[=V]", ...]`` -> dict; V is JSON if it parses, else a string,
    default 1.  With ``files``, ``^K=FILE`` reads a JSON value from FILE."""
    result = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if files and key.startswith("^"):
            with open(value, encoding="utf-8") as fp:
                result[key[1:]] = json.load(fp)
        else:
            result[key] = _json_or_string(value) if sep else 1
    return result


def _option_items(value, what):
    if value is None:
        return []
    if not isinstance(value, abc.Mapping):
        raise TypeError(f"{what} must be a mapping")
    return list(value.items())


def validate_jobspec(jobspec, require_version=None):
    """Validate a jobspec given as a `Jobspec`, JSON `str`/`bytes`, or the
    mapping decoded from such JSON.

    The document must have exactly the four top-level keys.  It is checked
    as a `JobspecV1` when ``require_version == 1`` or its version is 1,
    else as a `Jobspec`.  Returns ``(True, jobspec_object)``; problems
    raise `TypeError`/`ValueError` (including `json.JSONDecodeError`).
    """
    if isinstance(jobspec, Jobspec):
        jobspec = jobspec.dumps()
    doc = jobspec if isinstance(jobspec, abc.Mapping) else json.loads(jobspec)
    _check_toplevel_keys(doc)
    if require_version is not None and doc["version"] != require_version:
        if require_version != 1:  # JobspecV1 reports its own error
            raise ValueError(f"jobspec version must be {require_version}")
    if require_version == 1 or doc["version"] == 1:
        return True, JobspecV1(**doc)
    return True, Jobspec(**doc)
