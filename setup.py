"""The optional C extension; everything else is in pyproject.toml.

``imagewise.archive._tarhead`` parses plain tar headers in C (the per-entry hot path of every
layer walk). It is optional: where no C compiler exists the build goes on without it and the
pure-Python walk does the same work (``imagewise --version`` says which runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "imagewise.archive._tarhead",
            sources=["src/imagewise/archive/_tarhead.c"],
            optional=True,  # no compiler: install without it
            extra_compile_args=["-O2"],
        )
    ]
)
