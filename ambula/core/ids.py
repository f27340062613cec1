"""Time-ordered UUIDs (version 7, RFC 9562) for primary keys.

Sorted by creation time, so new rows land at the end of an index instead of at random places,
and ids never reveal a count the way sequential integers would.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_timestamp_ms = 0
_last_counter = 0
_COUNTER_BITS = 12


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7; ids made in one process are strictly increasing."""
    global _last_timestamp_ms, _last_counter
    with _lock:
        timestamp_ms = time.time_ns() // 1_000_000
        if timestamp_ms > _last_timestamp_ms:
            counter = int.from_bytes(os.urandom(2)) >> 5  # random start, room to count up
        else:
            # Same millisecond (or the clock stepped back): keep order by counting on.
            timestamp_ms = _last_timestamp_ms
            counter = _last_counter + 1
            if counter >= 1 << _COUNTER_BITS:
                timestamp_ms += 1
                counter = 0
        _last_timestamp_ms, _last_counter = timestamp_ms, counter
    random_tail = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (timestamp_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64
    value |= 0b10 << 62  # RFC 9562 variant
    value |= random_tail
    return uuid.UUID(int=value)
