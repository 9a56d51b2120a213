"""The optional compiled core: built when a C compiler works, skipped with a warning otherwise.

Everything else about the package is in pyproject.toml.  Without the
extension tracebridge runs its pure-Python paths, which give the same output.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns and goes on when there is no working compiler."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all: DistutilsPlatformError and friends
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, DistutilsExecError (CC=false), LinkError
            self._warn(exc)

    @staticmethod
    def _warn(exc: Exception) -> None:
        print(f"WARNING: tracebridge's native core was not built ({exc}); "
              "the pure-Python paths will be used", flush=True)


setup(
    ext_modules=[Extension("tracebridge.support._native", sources=["src/native/_native.c"],
                           depends=["src/native/dwarf_walk.h", "src/native/fbt_amd64.h", "src/native/x86_length.h",
                                    "src/native/x86_tables.h", "src/native/pmcgraph_scan.h",
                                    "src/native/dtrace_scan.h", "src/native/callchain_scan.h",
                                    "src/native/folded_text.h", "src/native/name_table.h",
                                    "src/native/symbol_records.h", "src/native/json_rows.h",
                                    "src/native/demangle_batch.h", "src/native/fbt_columns.h",
                                    "src/native/heap_policy.h"])],
    cmdclass={"build_ext": OptionalBuildExt},
)
