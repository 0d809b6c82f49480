# Written for the vendored copy (the package's setup.py has setuptools_scm generate this file at
# build time); tag 0.18.0 == commit ac8e2ba82f4e0d5eaa40069f8fc642738f124cd4.
__version__ = version = "0.18.0"
__version_tuple__ = version_tuple = (0, 18, 0)
__all__ = ["__version__", "version", "version_tuple"]
