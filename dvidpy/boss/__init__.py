"""The Boss's REST API (JHU/APL, ``/v1/...``) as a view of dvidpy's repos and instances.

What maps to what is in :mod:`dvidpy.boss.model` (resources), :mod:`dvidpy.boss.access`
(versions and authorization) and :mod:`dvidpy.boss.volumes` (resolutions, time samples,
reads and writes). Route tables, registered in ``server.ROUTE_TABLES``:

=================================  ==========================================================
``dvidpy.boss.resources``          ``/v1/collection/...``, ``/v1/coord/...``
``dvidpy.boss.cutout``             ``/v1/cutout/...``, ``/v1/image/...``, ``/v1/tile/...``,
                                   ``/v1/downsample/...``
``dvidpy.boss.objects``            ``/v1/ids/...``, ``/v1/boundingbox/...``,
                                   ``/v1/reserve/...``, ``/v1/meta/...``
``dvidpy.boss.groups``             ``/v1/groups/...``, ``/v1/permissions/...``
=================================  ==========================================================

Wire formats are in :mod:`dvidpy.boss.wire`.

Errors under ``/v1/`` are the Boss's JSON (:mod:`dvidpy.boss.errors`), everything else
keeps DVID's plain text. intern's ``BossRemote`` works unchanged against it
(``tests/e2e/test_boss_intern.py``).
"""
