"""Build of the optional C scanner and content-tree builder; everything else about the package is in pyproject.toml.

`optional=True`: without a working C compiler the build warns and goes on, and `fast_parser` walks the
bytes and `fast_reader` builds the content tree in pure Python instead (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sr2fhir_core.reading._scan",
            sources=["sr2fhir_core/reading/_scan.c"],
            optional=True,
        ),
        Extension(
            "sr2fhir_core.reading._tree",
            sources=["sr2fhir_core/reading/_tree.c"],
            optional=True,
        ),
    ]
)
