"""Start and stop for the local HTTP servers of ours: the fake Telegram and OpenAI servers and
the Binance emulator (which also runs standalone, so this module imports only the stdlib).

Why one piece: each binds 127.0.0.1 on a free port, serves from a daemon thread and must stop
deterministically - wake what it holds on purpose, stop accepting, close the socket, join the
thread - so a test never leaks a thread or a port and never waits for a hang to expire.
Written once, the order of those steps cannot drift between the servers. It lives here, in the
user-facing emulator, and the fakes import it from here, so the emulator never needs the fakes.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


class StartStop(ABC):
    """`with thing:` starts it and stops it on the way out, even when the block raises."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalHTTPServer(StartStop):
    """A `ThreadingHTTPServer` served from a daemon thread, bound at `start()`.

    Subclasses say which server to bind (`make_server`) and may end the requests they hold on
    purpose (hangs, long polls) in `release()`, which `stop()` calls first.
    """

    #: How often the accept loop looks for a stop request: what `stop()` may wait at most.
    poll_interval_s = 0.05

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self._bind_port = port  # 0: the OS picks a free one (see `.port`)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        """The bound server (its handler class and options) to serve at `address`."""

    def release(self) -> None:
        """Wake the requests held on purpose so none outlives `stop()`; nothing by default."""

    def start(self) -> Self:
        self._httpd = self.make_server((self.host, self._bind_port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": self.poll_interval_s},
            name=f"{self.name}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} not started: use `with` or start()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """e.g. http://127.0.0.1:54321, no trailing slash."""
        return f"http://{self.host}:{self.port}"
