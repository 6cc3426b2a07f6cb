"""``file://`` feeds and plain paths: the file's mtime and identity play the HTTP validators."""

from __future__ import annotations

import email.utils
import os
import stat

from daemon.intake.decode import TooBig
from daemon.intake.headers import Validators
from daemon.util.httpdates import parse_http_date


def read_local(path: str, validators: Validators, max_bytes: int) -> tuple[int, bytes | None, Validators]:
    """Runs in a worker thread. The mtime plays Last-Modified so an unchanged file answers 304."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file")
        # The ETag (nanosecond mtime, size, inode) also catches two writes within the same second.
        current = Validators(
            etag=f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"',
            last_modified=email.utils.formatdate(st.st_mtime, usegmt=True),
        )
        if validators.etag is not None:
            unchanged = validators.etag == current.etag
        else:
            since = parse_http_date(validators.last_modified)
            unchanged = since is not None and int(st.st_mtime) <= since.timestamp()
        if unchanged:
            return 304, None, current
        if st.st_size > max_bytes:
            raise TooBig
        data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooBig
        return 200, data, current
