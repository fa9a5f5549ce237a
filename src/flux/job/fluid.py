"""FLUID generation (RFC 19): unique, increasing 64-bit job ids.

A FLUID packs, from the most significant bit down::

    | 40-bit timestamp (ms since epoch) | 14-bit generator id | 10-bit seq |

`FluidGenerator` hands out ids that strictly increase for the life of the
generator, whatever the clock does:

- several ids in the same millisecond get sequence numbers 0, 1, 2, ...;
- after 1024 ids in one millisecond the generator borrows the next
  millisecond (the timestamp runs ahead of the clock for a while);
- a clock that stalls or steps backwards is treated like a stalled clock:
  the last timestamp is kept and the sequence advances.

Ids also increase across restarts as long as the instance keeps its epoch
(the server persists it) and the clock does not go back past the last id;
pass ``after=<last issued id>`` to make that unconditional.
"""

import time

__all__ = [
    "FluidGenerator",
    "fluid_compose",
    "fluid_timestamp",
    "fluid_generator_id",
    "fluid_sequence",
    "TIMESTAMP_BITS",
    "GENERATOR_BITS",
    "SEQUENCE_BITS",
]

TIMESTAMP_BITS = 40
GENERATOR_BITS = 14
SEQUENCE_BITS = 10

_TS_LIMIT = 1 << TIMESTAMP_BITS
_GEN_LIMIT = 1 << GENERATOR_BITS
_SEQ_LIMIT = 1 << SEQUENCE_BITS
_TS_SHIFT = GENERATOR_BITS + SEQUENCE_BITS


def fluid_compose(timestamp, generator_id, sequence):
    """Pack the three FLUID fields into one integer."""
    if not 0 <= timestamp < _TS_LIMIT:
        raise OverflowError(f"FLUID timestamp out of range: {timestamp}")
    if not 0 <= generator_id < _GEN_LIMIT:
        raise ValueError(f"FLUID generator id out of range: {generator_id}")
    if not 0 <= sequence < _SEQ_LIMIT:
        raise ValueError(f"FLUID sequence out of range: {sequence}")
    return (timestamp << _TS_SHIFT) | (generator_id << SEQUENCE_BITS) | sequence


def fluid_timestamp(fluid):
    """Milliseconds since the epoch encoded in ``fluid``."""
    return int(fluid) >> _TS_SHIFT


def fluid_generator_id(fluid):
    """Generator id (broker rank) encoded in ``fluid``."""
    return (int(fluid) >> SEQUENCE_BITS) & (_GEN_LIMIT - 1)


def fluid_sequence(fluid):
    """Sequence number encoded in ``fluid``."""
    return int(fluid) & (_SEQ_LIMIT - 1)


def _wall_clock_ms():
    return time.time_ns() // 1_000_000


class FluidGenerator:
    """Issue strictly increasing FLUIDs for one generator (broker rank).

    ``epoch_ms`` is the instance epoch in milliseconds since the Unix epoch;
    timestamps count from it.  ``clock`` (a callable returning the current
    time in Unix milliseconds) exists for tests.  Ids are greater than
    ``after`` when it is given.  Not thread-safe: one owner calls `next`.
    """

    def __init__(self, generator_id, epoch_ms, *, after=None, clock=None):
        if isinstance(generator_id, bool) or not isinstance(generator_id, int):
            raise TypeError("generator_id must be an int")
        if not 0 <= generator_id < _GEN_LIMIT:
            raise ValueError(f"generator_id must be in [0, {_GEN_LIMIT})")
        if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int):
            raise TypeError("epoch_ms must be an int")
        self.generator_id = generator_id
        self.epoch_ms = epoch_ms
        self._clock = clock or _wall_clock_ms
        # State "sequence exhausted at timestamp T" makes the next id use a
        # timestamp > T: the start state, and the state after ``after``.
        self._timestamp = -1
        self._sequence = _SEQ_LIMIT - 1
        if after is not None:
            self._timestamp = fluid_timestamp(after)

    @property
    def timestamp(self):
        """Timestamp of the last id issued (-1 before the first)."""
        return self._timestamp

    def next(self):
        """Return the next FLUID; `OverflowError` once 2^40 ms have run out."""
        now = self._clock() - self.epoch_ms
        if now > self._timestamp:
            self._timestamp, self._sequence = now, 0
        elif self._sequence + 1 < _SEQ_LIMIT:
            self._sequence += 1
        else:  # sequence exhausted: borrow the next millisecond
            self._timestamp, self._sequence = self._timestamp + 1, 0
        return fluid_compose(self._timestamp, self.generator_id, self._sequence)

    __next__ = next

    def __iter__(self):
        return self
