"""Building blocks shared by the block datatypes (all I/O-free but ``blockscan``).

* :mod:`datatypes.common.geometry` -- points, boxes, URL-string parsing and block math
  (voxel space is X,Y,Z in the API; arrays are C-order ``[z][y][x]``).
* :mod:`datatypes.common.blockstream` -- the ``int32 x,y,z,N`` + payload record stream.
* :mod:`datatypes.common.imagecodec` -- grayscale JPEG blocks and 2-D PNG/JPEG slices.
* :mod:`datatypes.common.roi_spans` -- ROI span algebra (``[z, y, x0, x1]`` block spans).
* :mod:`datatypes.common.blockscan` -- ZYX block TKeys and scans of the stored blocks in a
  box or ROI, driven by what is stored.
"""
