"""Liveness: how a broker learns that a neighbour in the tree is gone.

ZeroMQ reconnects forever and tells nothing, so the overlay keeps its own
watch (``Liveness``, one per broker of an instance of several):

- Rank 0 publishes ``heartbeat.pulse`` every ``heartbeat.period`` seconds
  (default 2); it goes down the whole tree.  A parent's send to a child
  whose connection is gone fails at once (ROUTER_MANDATORY): that child is
  **lost**.  The overlay also sends every child a probe as soon as its
  socket reports a disconnection, so a broker killed with SIGKILL is lost
  within milliseconds, not at the next pulse.
- A child that has sent its parent nothing for ``tbon.keepalive`` seconds
  (default 1) sends ``overlay.keepalive``.  A parent that has heard nothing
  from a child for ``tbon.torpid_max`` seconds (default 30) calls it
  **torpid**: no new work goes there, running jobs go on; anything heard
  makes it online again.  After ``tbon.lost_timeout`` seconds (default 120;
  0: never) of silence it is lost.
- A child whose parent's connection drops, or that has heard nothing from
  its parent for ``tbon.lost_timeout`` seconds, has lost its parent for
  good: it shuts down (its children and tasks with it).

A lost (or departed) rank takes its whole subtree offline; the broker that
saw it tells rank 0 (``broker.offline``), which publishes the event
``broker.offline {ranks, reason, lost}`` for its services (resource: the
ranks go down; job-exec: their jobs fail) and marks them offline.  Torpid
and back-to-online changes are published as ``broker.torpid {ranks,
torpid}`` the same way.
"""

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6

PULSE_TOPIC = "heartbeat.pulse"
DEFAULTS = {
    "heartbeat.period": 2.0,
    "tbon.keepalive": 1.0,
    "tbon.torpid_max": 30.0,
    "tbon.lost_timeout": 120.0,
}


class Liveness:
    def __init__(self, overlay):
        self.overlay = overlay
        self.broker = overlay.broker
        self.loop = None
        self._timer = None
        self._next_pulse = 0.0
        self.stopped = False

    def start(self, loop):
        seconds = self.broker.seconds
        self.period = seconds("heartbeat.period", DEFAULTS["heartbeat.period"])
        self.keepalive = seconds("tbon.keepalive", DEFAULTS["tbon.keepalive"])
        self.torpid_max = seconds("tbon.torpid_max", DEFAULTS["tbon.torpid_max"])
        self.lost_timeout = seconds("tbon.lost_timeout", DEFAULTS["tbon.lost_timeout"],
                                    allow_zero=True)  # 0: never
        self.tick = min(self.keepalive, self.period, 1.0)
        self.loop = loop
        self._next_pulse = loop.time() + self.period
        self._timer = loop.call_later(self.tick, self._check)

    def stop(self):
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self):
        """Once per tick: pulse (rank 0), keepalive, torpid and lost checks."""
        self._timer = None
        if self.stopped:
            return
        now = self.loop.time()
        ov = self.overlay
        if ov.rank == 0 and now >= self._next_pulse:
            self._next_pulse = now + self.period
            self.broker.router.publish(PULSE_TOPIC, {"period": self.period})
        if ov.parent is not None:
            if now - ov.last_sent_up >= self.keepalive:
                ov.send_keepalive()
            if self.lost_timeout and now - ov.parent_last_seen > self.lost_timeout:
                ov.parent_lost(f"nothing heard from it for {self.lost_timeout:g}s")
                return
        for peer in list(ov.children.values()):
            silent = now - peer.last_seen
            if self.lost_timeout and silent > self.lost_timeout:
                ov.child_lost(peer, f"nothing heard from it for {silent:.1f}s")
            elif silent > self.torpid_max and not peer.torpid:
                peer.torpid = True
                ov.log(LOG_WARNING, f"rank {peer.rank} is torpid: nothing heard"
                       f" from it for {silent:.1f}s")
                ov.report_torpid(peer, True)
        self._timer = self.loop.call_later(self.tick, self._check)

    def heard(self, peer):
        """A torpid child spoke again."""
        peer.torpid = False
        self.overlay.log(LOG_INFO, f"rank {peer.rank} is responsive again")
        self.overlay.report_torpid(peer, False)
