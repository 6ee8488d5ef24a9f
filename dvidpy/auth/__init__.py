"""Who may read, write and administer: ``[auth]`` settings (:mod:`~dvidpy.auth.config`),
token verification (:mod:`~dvidpy.auth.jwts`), API tokens and grants in the metadata store
(:mod:`~dvidpy.auth.stores`), the per-request decision (:mod:`~dvidpy.auth.service`) and its
routes (:mod:`~dvidpy.auth.routes`)."""
