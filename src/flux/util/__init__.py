"""Utilities for Flux Python tools (`flux.util`, spec sections 12 and 30).

The names live in small submodules and are all importable from here:

- durations and times: `parse_fsd`, `fsd`, `UtilDatetime` (`flux._format`)
  and `parse_datetime` (`times`);
- output formatting (`flux._format`): `UtilFormatter`, `OutputFormat`,
  `DisplayValue`, `empty_outputs`; `Deduplicator` and `AltField`
  (`output`);
- configuration (`config`, `treedict`): `UtilConfig`, `xdg_searchpath`,
  `get_treedict`, `set_treedict`, `del_treedict`, `dict_merge`;
- `Fileref` (RFC 37 file entries, `fileref`), `Tree` (`tree`);
- argparse helpers (`actions`): `ColorAction`, `TreedictAction`,
  `FilterAction`, `FilterActionSetUpdate`, `FilterActionUser`,
  `FilterTrueAction`, `YesNoAction`, `help_formatter`;
- messages (`messages`): `encode_topic`, `encode_payload`;
- decorators (`decorators`): `check_future_error`, `interruptible`;
- `CLIMain` (`cli`): run a command's ``main()``.

Optional dependencies (parsedatetime, PyYAML, tomllib/tomli) are imported
only when used, so importing this package stays cheap.
"""

from flux._format import (
    DisplayValue,
    OutputFormat,
    UtilDatetime,
    UtilFormatter,
    empty_outputs,
    fsd,
    parse_fsd,
)
from flux.util.actions import (
    ColorAction,
    ColorWhen,
    FilterAction,
    FilterActionSetUpdate,
    FilterActionUser,
    FilterTrueAction,
    TreedictAction,
    YesNoAction,
    help_formatter,
)
from flux.util.cli import CLIMain
from flux.util.config import UtilConfig, xdg_searchpath
from flux.util.decorators import check_future_error, interruptible
from flux.util.fileref import Fileref
from flux.util.messages import encode_payload, encode_topic
from flux.util.output import AltField, Deduplicator
from flux.util.times import parse_datetime
from flux.util.tree import Tree
from flux.util.treedict import del_treedict, dict_merge, get_treedict, set_treedict

__all__ = [
    "parse_fsd",
    "fsd",
    "parse_datetime",
    "UtilDatetime",
    "UtilFormatter",
    "OutputFormat",
    "DisplayValue",
    "empty_outputs",
    "Deduplicator",
    "AltField",
    "UtilConfig",
    "xdg_searchpath",
    "get_treedict",
    "set_treedict",
    "del_treedict",
    "dict_merge",
    "Fileref",
    "Tree",
    "ColorAction",
    "ColorWhen",
    "TreedictAction",
    "FilterAction",
    "FilterActionSetUpdate",
    "FilterActionUser",
    "FilterTrueAction",
    "YesNoAction",
    "help_formatter",
    "encode_topic",
    "encode_payload",
    "check_future_error",
    "interruptible",
    "CLIMain",
]
