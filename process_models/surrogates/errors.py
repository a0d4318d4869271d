"""The surrogate artifact's error, in a module without torch: ``linetwin surrogate`` names it in its one-line
refusals before anything has needed torch (a missing or malformed case file fails in a fraction of a second)."""

from __future__ import annotations

__all__ = ["SurrogateArtifactError"]


class SurrogateArtifactError(ValueError):
    """An artifact directory is missing, incomplete or unreadable (names the file)."""
