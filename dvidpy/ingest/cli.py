"""``dvidpy ingest SOURCE SERVER UUID INSTANCE``: the command line of :func:`~dvidpy.ingest.
client.ingest` (standard-library HTTP; readers other than Pillow's come with the
``ingest`` extra and are imported only for the sources that need them)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    """Add ``ingest`` to the ``dvidpy`` subcommands."""
    g = sub.add_parser(
        "ingest", help="load image slices or a volume into an instance (a resumable job)",
        description="Load SOURCE (a folder of TIFF/PNG/JPEG slices, a 3-D TIFF, an HDF5 "
        "file, a zarr / N5 / precomputed folder) into INSTANCE at version UUID of SERVER as "
        "a job the server tracks. Run the same command again to resume.")
    g.add_argument("source", metavar="SOURCE", help="folder of slices or a volume "
                   "(FILE.h5:/dataset names an HDF5 dataset)")
    g.add_argument("server", metavar="SERVER", help="server address, e.g. http://127.0.0.1:8000")
    g.add_argument("uuid", metavar="UUID", help="version to write (prefix or :branch)")
    g.add_argument("instance", metavar="INSTANCE", help="target instance")
    g.add_argument("--glob", help="slice files to take, e.g. '*.tif' (natural sort)")
    g.add_argument("--z-range", help="A:B: slices (z) A..B-1 only")
    g.add_argument("--dataset", help="HDF5 dataset path (default: the only 2-D/3-D one)")
    g.add_argument("--box", help="x0,y0,z0,x1,y1,z1: the part of the source to ingest "
                   "(source voxels, exclusive end)")
    g.add_argument("--offset", help="x,y,z added to source coordinates (default 0,0,0)")
    g.add_argument("--chunk", help="x,y,z chunk shape, multiples of the block size "
                   "(default about 16 MiB)")
    g.add_argument("--create", nargs="?", const="auto", metavar="TYPE",
                   help="make the instance when missing (TYPE: uint8blk, labelmap, ...; "
                   "default: the type for the source's dtype)")
    g.add_argument("--block-size", help="x,y,z block size of a created instance")
    g.add_argument("--voxel-size", help="x,y,z voxel size (nm) of a created instance")
    g.add_argument("--scale-from-source", action="store_true",
                   help="voxel size from the file's metadata where it has it")
    g.add_argument("--workers", type=int, default=4, help="parallel uploads (default 4)")
    g.add_argument("--scheduler", default="auto", help="auto (a local Dask cluster for an "
                   "upload of 16 GiB or more on a machine of more than 2 cores when Dask "
                   "is installed, else threads), threads, local, or tcp://HOST:8786")
    g.add_argument("--scheduler-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to try reaching a --scheduler tcp://... (default 30)")
    g.add_argument("--no-pyramid", action="store_true", help="do not build the pyramid")
    g.add_argument("--pyramid-chunk", help="x,y,z voxels of a pyramid level each pyramid "
                   "task builds, multiples of the block size (default: --chunk)")
    g.add_argument("--restart", action="store_true", help="a new job instead of resuming")
    g.add_argument("--resend-changed", action="store_true",
                   help="re-upload acknowledged chunks whose source changed")
    g.add_argument("--cast", action="store_true",
                   help="accept a source dtype the target can't hold when the values fit")
    g.add_argument("--retries", type=int, default=6, help="tries again of a request that "
                   "found the server down or failing (backoff 0.5..8 s; default 6)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--token", help="credential (default: $DVIDPY_TOKEN)")
    g.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from dvidpy.ingest.client import ingest
    from dvidpy.ingest.sources import SourceError
    from dvidpy.ingest.target import IngestError

    z_range = None
    try:
        if args.z_range:
            a, _, b = args.z_range.partition(":")
            try:
                z_range = (int(a), int(b))
            except ValueError:
                raise IngestError(f"--z-range {args.z_range!r}: expected A:B") from None
        vs = None
        if args.voxel_size:
            try:
                vs = [float(v) for v in args.voxel_size.split(",")]
            except ValueError:
                vs = []
            if len(vs) != 3:
                raise IngestError(f"--voxel-size {args.voxel_size!r}: expected x,y,z numbers")
        r = ingest(args.source, args.server, args.uuid, args.instance, glob=args.glob,
                   dataset=args.dataset, z_range=z_range, box=args.box, offset=args.offset,
                   chunk=args.chunk, create=args.create, block_size=args.block_size,
                   voxel_size=vs, scale_from_source=args.scale_from_source,
                   workers=args.workers, scheduler=args.scheduler, token=args.token,
                   pyramid=not args.no_pyramid, restart=args.restart,
                   resend_changed=args.resend_changed, cast=args.cast,
                   progress=not args.quiet, retries=max(0, args.retries),
                   pyramid_chunk=args.pyramid_chunk,
                   scheduler_timeout=args.scheduler_timeout)
    except (SourceError, IngestError) as e:
        print(f"dvidpy ingest: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dvidpy ingest: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"job {r.job} {r.state}: {r.chunks_sent} chunk(s) sent, {r.chunks_skipped} "
          f"already acknowledged, of {r.chunks_total}; {r.bytes_sent / 2**20:.1f} MiB in "
          f"{r.upload_seconds:.1f} s ({r.mb_per_s:.1f} MB/s) on {r.runner}"
          + (f"; pyramid: {r.note}" if r.note else "")
          + (f" in {r.pyramid_seconds:.1f} s" if r.pyramid_seconds else ""))
    return 0
