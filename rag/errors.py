"""Exceptions with messages meant for the person running the tool."""


class RagError(Exception):
    """Base class: a problem the user can act on (bad input, bad index, ...)."""


class EmptyQueryError(RagError, ValueError):
    """The question or query is empty or only whitespace."""


class InvalidArgumentError(RagError, ValueError):
    """A search or build argument is out of range (k, mode, dense kind, ...)."""


class DocumentError(RagError):
    """A source file cannot be read or decoded."""


class DocumentNotFoundError(RagError, LookupError):
    """No document of that name is in the index."""


class IndexError_(RagError):
    """The index directory is missing, corrupt or incompatible."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, dimension or format version."""


class CorruptIndexError(IndexError_):
    """An index file is truncated or its checksum does not match."""


class GeneratorError(RagError):
    """A language-model generator failed (endpoint down, model missing, ...)."""
