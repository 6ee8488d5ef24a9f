"""Build hook for the optional compiled label-block codec (everything else is in pyproject.toml).

The extension is ``optional``: when no C compiler (or no Python headers) is available the
install still succeeds and :mod:`datatypes.labelmap.block_codec` uses its numpy path.
"""

import os

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "datatypes.labelmap._block_codec_c",
            ["datatypes/labelmap/_block_codec_c.c"],
            extra_compile_args=[] if os.name == "nt" else ["-O3"],
            optional=True,
        )
    ]
)
