"""The bundle directory ``record`` writes into, made so that nobody else can steer what root writes or runs.

``record`` runs as root, often in a directory other users can write
(``/tmp``).  Whoever controls a directory root writes into can make root
overwrite any file (a symlink planted under a name the bundle uses) and,
since dtrace reads its script from that directory, run their own D script as
root (``system()`` with ``#pragma D option destructive``) by swapping the
script between its writing and dtrace reading it.  So, as OpenSSH checks the
paths of its configuration:

* the directory is made here, mode 0700; an existing path is taken only
  when it is a directory (not a symlink) owned by the invoking user, not
  writable by group or others, and empty (``--force``: not empty);
* no component of the path may be a symlink owned by anyone but the user or
  root, and every directory above it must be owned by the user or root and
  not writable by others unless sticky (``/tmp``: others cannot rename what
  root made there); otherwise its owner could rename the directory away and
  put one of their own under its name;
* once made, the directory is held open and everything in it is reached
  relative to that descriptor (``dir_fd=``, ``fchdir`` for the tools), so a
  rename of the path or of a parent afterwards changes nothing: the
  ownership and mode are checked on the open descriptor itself;
* every file is created with ``O_CREAT|O_EXCL|O_NOFOLLOW``: a name that
  exists (a symlink planted under it) is refused, never followed.  With
  ``--force`` the bundle's own names are unlinked first (the link, never
  what it points to).
"""

from __future__ import annotations

import os
import stat
from typing import IO

from tracebridge.support.errors import UsageError

#: Mode of the bundle directory: the recording is root's until it hands it on.
DIRECTORY_MODE = 0o700
FILE_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def check_output_directory(path: str, force: bool) -> None:
    """Refuse, before anything starts, an output path ``record`` may not write into (see the module doc)."""
    _check_components(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise UsageError(f"{path}: directory {parent} does not exist") from None
        return
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"{path}: is a symbolic link; record writes only into a directory it makes itself, "
                         "or an empty one of yours")
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: exists and is not a directory")
    _check_owned(path, info)
    if os.listdir(path) and not force:
        raise UsageError(f"{path}: directory is not empty; choose a new one, or --force to write into it "
                         "(files of the bundle's names are replaced, others are kept)")


def _check_components(path: str) -> None:
    """Nobody but the user (or root) may be able to change where ``path`` leads (see the module doc)."""
    me = os.geteuid()
    current = os.sep
    for part in [p for p in os.path.dirname(os.path.abspath(path)).split(os.sep) if p]:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except OSError:
            return  # the parent's absence is reported by the caller
        if stat.S_ISLNK(info.st_mode) and info.st_uid not in (me, 0):
            raise UsageError(f"{path}: {current} is a symbolic link owned by uid {info.st_uid}, "
                             "who could point it anywhere: choose a path through directories you own")
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    current = os.sep
    for part in ["", *(p for p in parent.split(os.sep) if p)]:
        current = os.path.join(current, part)
        try:
            info = os.stat(current)
        except OSError:
            return
        if info.st_uid not in (me, 0):
            raise UsageError(f"{path}: directory {current} belongs to uid {info.st_uid}, who could rename "
                             f"{os.path.basename(path)} away and put their own in its place: choose a path "
                             "through directories only you or root can change")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            raise UsageError(f"{path}: directory {current} is writable by group or others (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}, not sticky), who could rename "
                             f"{os.path.basename(path)} away and put their own in its place: choose a path "
                             "through directories only you or root can change")


def _check_owned(path: str, info: os.stat_result) -> None:
    me = os.geteuid()
    if info.st_uid != me:
        raise UsageError(f"{path}: directory belongs to uid {info.st_uid}, not to you (uid {me}): "
                         "whoever owns it could plant links or swap the D script; choose a new path")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(f"{path}: directory is writable by group or others (mode "
                         f"{stat.S_IMODE(info.st_mode):04o}): others could plant links or swap the D script; "
                         "choose a new path")


class OutputDirectory:
    """The open bundle directory; files are made and read in it by name, relative to its descriptor."""

    def __init__(self, path: str, force: bool):
        self.path = path
        self.force = force
        made = False
        try:
            os.mkdir(path, DIRECTORY_MODE)
            made = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise UsageError(f"{path}: cannot create the directory: {exc.strerror or exc}") from None
        try:
            self.fd = os.open(path, _DIRECTORY)
        except OSError as exc:
            raise UsageError(f"{path}: cannot open the directory: {exc.strerror or exc}") from None
        try:
            info = os.fstat(self.fd)
            _check_owned(path, info)  # of what was opened: a path swapped since the check is caught here
            if made:
                os.fchmod(self.fd, DIRECTORY_MODE)  # the umask may have taken bits the mode needs
            elif os.listdir(self.fd) and not force:
                raise UsageError(f"{path}: directory is not empty; choose a new one, or --force")
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        os.close(self.fd)

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def create(self, name: str, mode: str = "wb") -> IO:
        """A new file ``name`` for writing; refused when the name exists (a planted link is never followed)."""
        if self.force:
            self._remove_old(name)
        try:
            fd = os.open(name, _CREATE, FILE_MODE, dir_fd=self.fd)
        except FileExistsError:
            raise UsageError(f"{self.join(name)}: appeared while recording (someone else writes into "
                             f"{self.path}?): refusing to write through it") from None
        except OSError as exc:
            raise UsageError(f"{self.join(name)}: cannot create: {exc.strerror or exc}") from None
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding="utf-8", errors="surrogateescape", newline="")

    def _remove_old(self, name: str) -> None:
        """``--force``: the bundle's own name goes (a link itself, not its target; never a directory)."""
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{self.join(name)}: is a directory where the bundle writes a file")
        os.unlink(name, dir_fd=self.fd)

    def read(self, name: str, limit: int) -> bytes | None:
        """Up to ``limit`` bytes of the regular file ``name`` (not through a link); None if it is not one."""
        return self._read(name, limit, tail=False)

    def tail(self, name: str, size: int) -> bytes | None:
        """The last ``size`` bytes of the regular file ``name``; None if it is not one."""
        return self._read(name, size, tail=True)

    def _read(self, name: str, limit: int, tail: bool) -> bytes | None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            if tail:
                handle.seek(max(0, info.st_size - limit))
            return handle.read(limit)

    def size(self, name: str) -> int | None:
        """The size of the regular file ``name``, None when there is none."""
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def enter(self) -> None:
        """Make the directory the working directory (in a tool's child process, before it execs)."""
        os.fchdir(self.fd)
