"""RPC futures (``flux.rpc.RPC``)."""

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)
from flux.future import Future, _State
from flux.message import (
    Message,
    MSGFLAG_NORESPONSE,
    MSGFLAG_STREAMING,
    check_topic,
    encode_payload,
    loads_payload,
)


class RPC(Future):
    """Send a request; the future is fulfilled by its response(s).

    ``get()`` returns the decoded JSON payload (``None`` if empty);
    ``get_str()`` the raw text.  A streaming RPC (``FLUX_RPC_STREAMING``)
    delivers one response per ``reset()`` and ends with an ENODATA error.
    """

    def __init__(self, flux_handle, topic, payload=None, nodeid=FLUX_NODEID_ANY,
                 flags=0):
        topic = check_topic(topic)
        st = _State(flux_handle)
        super().__init__(st)
        msgflags = 0
        if flags & FLUX_RPC_STREAMING:
            msgflags |= MSGFLAG_STREAMING
            st.streaming = True
        if flags & FLUX_RPC_NORESPONSE:
            msgflags |= MSGFLAG_NORESPONSE
        msg = Message.__new__(Message)
        Message.__init__(msg, FLUX_MSGTYPE_REQUEST)
        msg._topic = topic
        msg.flags = msgflags
        msg.nodeid = nodeid
        msg._raw, msg._obj = encode_payload(payload)
        conn = st.conn
        if flags & FLUX_RPC_NORESPONSE:
            st.final = True
            conn.send(msg, flush=True)
            return
        tag = conn.new_matchtag()
        msg.matchtag = tag
        st.matchtag = tag
        conn.rpcs[tag] = st
        try:
            conn.send(msg)  # encodes now: a payload JSON cannot carry raises here
        except (OSError, TypeError, ValueError):
            conn.rpcs.pop(tag, None)
            raise

    def get_str(self):
        msg = self._head()
        if msg is None:
            return None
        return msg.payload_str

    def get(self):
        msg = self._head()
        if msg is None or not msg.has_payload():
            return None
        if msg._obj is not None:
            return msg._obj
        raw = msg._raw
        if not raw:
            return None
        return loads_payload(raw)  # not JSON: OSError(EPROTO), a ValueError too
