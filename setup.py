"""The optional C extensions; everything else is in pyproject.toml.

``imagewise.archive._tarhead`` parses plain tar headers in C (the per-entry hot path of every
layer walk); ``imagewise.secrets._literals`` finds which secret rules' literals occur in a file
(the secret scan's prefilter). Both are optional: where no C compiler exists the build goes on
without them and Python does the same work (``imagewise --version`` says which runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "imagewise.archive._tarhead",
            sources=["src/imagewise/archive/_tarhead.c"],
            optional=True,  # no compiler: install without it
            extra_compile_args=["-O2"],
        ),
        Extension(
            "imagewise.secrets._literals",
            sources=["src/imagewise/secrets/_literals.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
