"""Credentials shared by the auth tests (a module of its own: ``conftest`` names a different
module depending on which test folders one pytest run collects first)."""

SECRET = "test-secret-key-of-32-bytes-or-more!"
ADMIN = "root@lab.org"
