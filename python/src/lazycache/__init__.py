"""lazycache: exact frames of huge remote movies as NumPy arrays, from a lazycache server.

>>> import lazycache
>>> lc = lazycache.Client("http://127.0.0.1:8080/v1/demo")
>>> lc.list().files
>>> meta = lc.metadata("prores_hq_1080p.mov")
>>> frame = lc.frame("prores_hq_1080p.mov", 42)                      # (1080, 1920, 3) uint8
>>> luma = lc.frame("prores_hq_1080p.mov", 42, depth=16, channels="gray")  # (1080, 1920) uint16
>>> run = lc.frames("prores_hq_1080p.mov", range(1, 51))             # (50, 1080, 1920, 3)

:class:`Client` is synchronous (thread-safe, pooled), :class:`AsyncClient` the same for asyncio,
and :mod:`lazycache.dask` (``pip install 'lazycache[dask]'``) builds Dask arrays of frames of
one or many movies for a ``dask.distributed`` cluster.
"""

from .aio import AsyncClient
from .client import Client
from .errors import (
    BadRequest,
    HTTPError,
    IncompleteResponse,
    LazycacheError,
    NotFound,
    OriginError,
    OriginTimeout,
    RawOutputDisabled,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnsupportedMedia,
)
from .models import FrameInfo, Listing, Metadata
from .options import FrameOptions, output_shape

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "FrameInfo",
    "FrameOptions",
    "HTTPError",
    "IncompleteResponse",
    "LazycacheError",
    "Listing",
    "Metadata",
    "NotFound",
    "OriginError",
    "OriginTimeout",
    "RawOutputDisabled",
    "RequestTimeout",
    "ServerError",
    "ServiceUnavailable",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMedia",
    "__version__",
    "output_shape",
]
