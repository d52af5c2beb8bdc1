"""Build of the optional C scanner; everything else about the package is in pyproject.toml.

`optional=True`: without a working C compiler the build warns and goes on, and `fast_parser` walks the
bytes in pure Python instead (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sr2fhir_core.reading._scan",
            sources=["sr2fhir_core/reading/_scan.c"],
            optional=True,
        )
    ]
)
