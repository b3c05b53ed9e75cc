"""Build the private Cython extension modules of ovsnet from ``native/``.

Everything else about the package lives in pyproject.toml; setuptools needs
this file only to learn about the extension modules.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

#: one private extension module ovsnet.<name> per native/<name>.pyx
NATIVE_MODULES = tuple(sorted(p.stem for p in Path(__file__).parent.joinpath("native").glob("*.pyx")))

extensions = [
    Extension(
        f"ovsnet.{name}",
        [f"native/{name}.pyx"],
        include_dirs=[numpy.get_include(), "native"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-funroll-loops"],
    )
    for name in NATIVE_MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
