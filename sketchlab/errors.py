"""The errors SketchLab raises at its boundaries.

Every problem with a drawing a caller passed in (wrong nesting or types, NaN/inf, too many points, no extent...)
raises `DrawingError`, a `ValueError` subclass, so callers catch one type. Problems with model files raise
`ModelError`, which names the file and the fix.
"""


class DrawingError(ValueError):
    """The drawing passed in is not usable: the message says what is wrong and what is allowed."""


class ModelError(RuntimeError):
    """A model file or its manifest is missing, corrupt, or does not match what the code expects."""
