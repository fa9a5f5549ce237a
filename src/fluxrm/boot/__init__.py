"""How a broker learns its place in a multi-broker instance.

- `fluxrm.boot.topology`: the tree's shape (parents, children, levels,
  routing down the tree), k-ary or given by an explicit parent map.
- `fluxrm.boot.config`: the ``[bootstrap]`` table of the instance
  configuration: rank, size, host list, URIs and topology for this host.
- `fluxrm.boot.cert`: CURVE certificates (written by ``flux keygen``, read
  by the overlay), kept private to their owner.
"""
