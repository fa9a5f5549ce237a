"""Message helpers of `flux.util`: `encode_topic` and `encode_payload`."""

import errno
import json


def encode_topic(topic):
    """Return ``topic`` as UTF-8 bytes.

    ``None`` raises ``OSError(EINVAL)``, a type other than str/bytes
    ``TypeError(EINVAL, "Topic must be a string, not <class ...>")``.
    """
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, str):
        return topic.encode("utf-8")
    if isinstance(topic, bytes):
        return topic
    raise TypeError(errno.EINVAL, f"Topic must be a string, not {type(topic)}")


def encode_payload(payload):
    """Return a message payload as bytes, or None for no payload.

    str and bytes are sent verbatim (str as UTF-8, lone surrogates escaped back
    to their bytes); anything else is
    JSON-encoded with ``ensure_ascii=False``.
    """
    if payload is None:
        return None
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
