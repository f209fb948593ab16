"""The event loop and its network side; re-exports the names the rest of seedloop imports.

One module per job: ``core`` (SeedLoop), ``tasks`` (SeedTask/SeedFuture and
``create_task``), ``net_methods`` (the loop's
network methods), ``stream`` (TCP), ``datagram`` (UDP), ``tls`` (asyncio's
SSLProtocol on a simulated transport), ``fake_socket`` (SimSocket).
"""

import sys

from .core import SeedLoop
from .datagram import _DatagramTransport
from .fake_socket import SimSocket
from .net_methods import NetLoopMixin
from .stream import _Listener, _StreamTransport
from .tasks import SeedFuture, SeedTask

__all__ = [
    "NetLoopMixin",
    "SeedFuture",
    "SeedLoop",
    "SeedTask",
    "SimSocket",
    "_DatagramTransport",
    "_Listener",
    "_StreamTransport",
]

if sys.version_info >= (3, 12):
    from .core import new_event_loop_factory

    __all__ += ["new_event_loop_factory"]
