"""The one error type of :mod:`reelgate.media`: a file PyAV cannot read or write."""

from __future__ import annotations


class MediaError(Exception):
    """A media file could not be read or written (the message names the file)."""
