"""The one error hierarchy of d2f.

Every error the library raises on purpose derives from :class:`D2FError`, so callers (and the CLI) can
catch d2f's own failures without swallowing programming errors. Input errors also derive from
``ValueError`` so that code written against plain PyTorch conventions keeps working.
"""


class D2FError(Exception):
    """Base class of every error raised by d2f.

    ``exit_code`` is what the command-line tool exits with: 1 for a failure at run time, 2 for bad
    usage or bad input.
    """

    exit_code = 1


class InputError(D2FError, ValueError):
    """An argument has the wrong shape, dtype, range or value."""

    exit_code = 2


class ImageReadError(D2FError, ValueError):
    """A file could not be read as an image."""

    exit_code = 2


class ImageTooLargeError(ImageReadError):
    """An image is larger than the size limit it was read under (``max_megapixels``)."""


class CheckpointError(D2FError, ValueError):
    """A checkpoint file is unreadable or does not match the architecture."""

    exit_code = 2


class ConfigError(D2FError, ValueError):
    """A configuration file or override is invalid."""

    exit_code = 2


class DataError(D2FError, ValueError):
    """A dataset folder or one of its files is missing or invalid."""

    exit_code = 2
