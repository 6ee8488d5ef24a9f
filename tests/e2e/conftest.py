"""End-to-end fixtures: a real ``dvidpy serve`` process on a free loopback port."""

from servers import ServerProcess, client, free_port, server

__all__ = ["ServerProcess", "client", "free_port", "server"]
