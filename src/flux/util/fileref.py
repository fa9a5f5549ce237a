"""`Fileref`: an RFC 37 file entry (part of `flux.util`)."""

import base64
import os
import stat


class Fileref(dict):
    """An RFC 37 file entry.

    A dict ``data`` becomes ``{"mode": S_IFREG|perms, "data": data}``. With
    ``encoding`` (``"utf-8"`` or ``"base64"``) ``data`` is stored verbatim.
    Otherwise ``data`` is the path of a file read now: its ``mode``,
    ``size`` and content, as UTF-8 text when possible, else base64.
    """

    def __init__(self, data, perms=0o600, encoding=None):
        super().__init__()
        if encoding is not None and encoding not in ("utf-8", "base64"):
            raise ValueError(f"invalid Fileref encoding: {encoding}")
        if isinstance(data, dict):
            self.update(mode=stat.S_IFREG | perms, data=data)
        elif encoding is not None:
            self.update(mode=stat.S_IFREG | perms, data=data, encoding=encoding)
        else:
            with open(data, "rb") as fp:
                info = os.fstat(fp.fileno())
                content = fp.read()
            try:
                text, encoding = content.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = base64.b64encode(content).decode("ascii"), "base64"
            self.update(
                mode=info.st_mode, size=info.st_size, data=text, encoding=encoding
            )
