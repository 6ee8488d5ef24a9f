"""Ingest: image stacks and volumes into an instance, as a job the server tracks.

``dvidpy ingest SOURCE SERVER UUID INSTANCE`` (or :func:`dvidpy.ingest.client.ingest`)
reads a source (a directory of 2-D slices, a 3-D TIFF, an HDF5 dataset, a zarr / N5 /
neuroglancer precomputed volume: :mod:`dvidpy.ingest.sources`) in *chunks*, block-aligned
boxes of the target's voxel space (default about 16 MiB each), and uploads each with the
target's own ``POST raw`` (:mod:`dvidpy.ingest.target`), in parallel on threads or as
Dask tasks (:mod:`dvidpy.ingest.runner`). The server records the job in its metadata
store (:mod:`dvidpy.ingest.jobs`, routes in :mod:`dvidpy.ingest.routes`):

``POST   /api/ingest``                    create the job, or find the same job and resume it
``GET    /api/ingest``                    every job the caller may read
``GET    /api/ingest/{job}``              one job (state, counts, pyramid progress, error)
``GET    /api/ingest/{job}/chunks``       the acknowledged chunks (index, checksum, bytes,
                                          source fingerprint)
``POST   /api/ingest/{job}/chunks/{n}``   acknowledge chunk ``n`` after its ``POST raw``
``POST   /api/ingest/{job}/state``        ``UPLOADING``, ``DOWNSAMPLING`` (all chunks
                                          acknowledged: plan the pyramid) or ``FAILED``
``GET    /api/ingest/{job}/pyramid``      the pyramid's task counts per level, tasks done
``POST   /api/ingest/{job}/pyramid/{level}/{n}``
                                          build pyramid task ``n`` of ``level``, record it
``DELETE /api/ingest/{job}``              cancel (a COMPLETE or CANCELLED job: forget it)

States: ``PREPARING`` (made or resumed; the client checks the source) -> ``UPLOADING`` ->
``DOWNSAMPLING`` (the pyramid above the job's box, as tasks the client runs on its
runner: each task asks the server to build one chunk-shaped box of blocks of one level
from the level below with the target datatype's own pyramid code; levels in order;
labelmap's levels were built as its blocks were written, so it has no tasks) ->
``COMPLETE`` (the last task done); ``FAILED`` (a source file broke, or a pyramid task was
refused; resumable) and ``CANCELLED`` (``DELETE``) from any state before ``COMPLETE``.

Resume: a job is the same job when the version, instance, source identity, box and chunk
shape are the same; running the command again finds it and uploads only the chunks it
has not acknowledged. Each chunk is written with ``POST raw`` (an overwrite, so sending it
twice is harmless) and acknowledged afterwards with its CRC-32 and the fingerprint of the
source files it came from (sizes and modification times); the job's counts advance only
on acknowledgements. On resume, an acknowledged chunk whose files changed is read again
and its checksum compared: a chunk whose voxels changed stops the run with an error naming
it (``--resend-changed`` uploads it again).
"""

from __future__ import annotations

__all__ = ["STATES"]

#: the job states, in the order a job passes them (the last two: from any earlier state)
STATES = ("PREPARING", "UPLOADING", "DOWNSAMPLING", "COMPLETE", "FAILED", "CANCELLED")
