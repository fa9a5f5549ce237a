"""`Tree`: a labelled tree rendered like pstree(1) (part of `flux.util`)."""

import os


class Tree:
    """A labelled tree rendered like pstree(1).

    Each node prints as ``prefix + connectors + label``. When
    ``combine_children`` is set, identical leaf children (same label and
    prefix) render once as ``N*[label]``.
    """

    # (tee, elbow, trunk, blank) connectors per style
    styles = {
        "box": ("├── ", "└── ", "│   ", "    "),
        "ascii": ("|-- ", "`-- ", "|   ", "    "),
        "compact": ("├─", "└─", "│ ", "  "),
    }

    def __init__(self, label, prefix="", combine_children=False):
        self.label = label
        self.prefix = prefix
        self.combine_children = combine_children
        self.children = []

    def append(self, label, prefix=""):
        """Add and return a child node."""
        child = Tree(label, prefix=prefix, combine_children=self.combine_children)
        self.children.append(child)
        return child

    def append_tree(self, tree):
        """Add an existing tree as a child; return it."""
        self.children.append(tree)
        return tree

    def _display_children(self):
        """Children as (node, label), identical leaves combined if asked."""
        if not self.combine_children:
            return [(child, child.label) for child in self.children]
        groups = []
        leaves = {}
        for child in self.children:
            if child.children:
                groups.append([child, 1])
                continue
            key = (child.label, child.prefix)
            if key in leaves:
                leaves[key][1] += 1
            else:
                leaves[key] = [child, 1]
                groups.append(leaves[key])
        return [
            (child, child.label if count == 1 else f"{count}*[{child.label}]")
            for child, count in groups
        ]

    def _lines(self, chars, label, indent, connector, depth, level):
        tee, elbow, trunk, blank = chars
        yield self.prefix + indent + connector + label
        if level is not None and depth >= level:
            return
        if connector:
            indent += blank if connector == elbow else trunk
        children = self._display_children()
        for index, (child, child_label) in enumerate(children):
            child_connector = elbow if index == len(children) - 1 else tee
            yield from child._lines(
                chars, child_label, indent, child_connector, depth + 1, level
            )

    def lines(self, style="box", level=None, skip_root=False):
        """Return the rendered lines (see `render`)."""
        if style not in self.styles:
            raise ValueError(f"invalid tree style: {style}")
        chars = self.styles[style]
        if not skip_root:
            return list(self._lines(chars, self.label, "", "", 0, level))
        if level is not None and level < 1:
            return []
        result = []
        for child, child_label in self._display_children():
            result.extend(child._lines(chars, child_label, "", "", 1, level))
        return result

    def render(self, style="box", level=None, skip_root=False, truncate=True):
        """Print the tree.

        ``style`` is ``box``, ``ascii`` or ``compact``; ``level`` limits the
        depth shown (0: the root only); ``skip_root`` prints the root's
        children as top-level nodes; lines longer than ``$COLUMNS`` (else
        132) are cut with ``+`` unless ``truncate`` is false.
        """
        try:
            width = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            width = 0
        if width <= 0:
            width = 132
        for line in self.lines(style=style, level=level, skip_root=skip_root):
            if truncate and len(line) > width:
                line = line[: width - 1] + "+"
            print(line)
