"""tracebridge: DTrace FBT and hwpmc support for Rust FreeBSD kernel modules."""

__version__ = "0.1.0"
