"""Dotted-key dict helpers of `flux.util`: `get_treedict`, `set_treedict`,
`del_treedict` and `dict_merge`."""


def get_treedict(in_dict, key, default=None):
    """Return ``in_dict["a"]["b"]`` for key ``"a.b"``, or ``default``."""
    value = in_dict
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def set_treedict(in_dict, key, val):
    """Set ``in_dict["a"]["b"] = val`` for key ``"a.b"``, creating levels."""
    *parents, last = key.split(".")
    for part in parents:
        in_dict = in_dict.setdefault(part, {})
    in_dict[last] = val


def del_treedict(in_dict, key, remove_empty=False):
    """Delete dotted ``key`` from ``in_dict`` (`KeyError` if missing).

    With ``remove_empty``, parents left empty by the deletion are removed too.
    """
    *parents, last = key.split(".")
    chain = [in_dict]
    for part in parents:
        child = chain[-1][part]
        if not isinstance(child, dict):
            raise KeyError(key)
        chain.append(child)
    del chain[-1][last]
    if remove_empty:
        for parent, part in zip(reversed(chain[:-1]), reversed(parents)):
            if parent[part]:
                break
            del parent[part]


def dict_merge(dst, src):
    """Merge ``src`` into ``dst`` recursively, in place; return ``dst``."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            dict_merge(dst[key], value)
        else:
            dst[key] = value
    return dst
