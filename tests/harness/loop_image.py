"""A small ext4 file system on a loop device, for tests of full disks and power cuts.

Root only (mount, losetup). Whatever happens, `detach()` unmounts and frees the loop
device; use it in a finally block or through the `loop_image` context manager.
"""

import contextlib
import os
import shutil
import subprocess
import time

from .httpd_env import HTTPD_USER, RUNNING_AS_ROOT

NEEDS_ROOT = "loop-mounting a file system needs root"


def _run(*args):
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=60)


class LoopImage:
    """An image file, the loop device it is attached to, where it is mounted."""

    def __init__(self, image_path, mount_point):
        self.image_path = image_path
        self.mount_point = mount_point
        self.device = None
        self.mounted = False

    @classmethod
    def create(cls, image_path, mount_point, size_mib, mount_options="", state_dir="state"):
        """A fresh ext4 of size_mib MiB (no blocks reserved for root, so that root and
        httpd's user see the same free space), mounted with a directory state_dir in
        it owned by httpd's user."""
        with open(image_path, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        _run("mkfs.ext4", "-q", "-F", "-m", "0", image_path)
        image = cls(image_path, mount_point)
        image.attach(mount_options)
        try:
            if state_dir:
                path = os.path.join(mount_point, state_dir)
                os.makedirs(path)
                if RUNNING_AS_ROOT:
                    shutil.chown(path, HTTPD_USER, HTTPD_USER)
        except BaseException:
            image.detach()
            raise
        return image

    def attach(self, mount_options=""):
        os.makedirs(self.mount_point, exist_ok=True)
        self.device = subprocess.run(["losetup", "-f", "--show", self.image_path], check=True,
                                     capture_output=True, text=True, timeout=60).stdout.strip()
        try:
            args = ["mount", "-t", "ext4"]
            if mount_options:
                args += ["-o", mount_options]
            _run(*args, self.device, self.mount_point)
            self.mounted = True
        except BaseException:
            self.detach()
            raise

    @property
    def sysfs(self):
        return f"/sys/block/{os.path.basename(self.device)}"

    def _read_sysfs(self, name):
        with open(os.path.join(self.sysfs, name)) as f:
            return f.read().split()

    def snapshot(self, copy_path, timeout=30):
        """Copies the image as the disk holds it now, without syncing anything: what a
        power cut would leave. The caller has stopped every writer (SIGSTOP); the
        kernel may still write back, so the copy is retried until no write reached
        the device while it was taken."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self._read_sysfs("inflight") != ["0", "0"]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.device} never went idle")
                time.sleep(0.01)
            before = self._read_sysfs("stat")
            shutil.copyfile(self.image_path, copy_path)
            after = self._read_sysfs("stat")
            # Fields 5-8: writes completed, merged, sectors written, time writing;
            # then the flush counters (fields 15-16) where the kernel has them.
            if before[4:8] == after[4:8] and before[14:16] == after[14:16] and \
                    self._read_sysfs("inflight") == ["0", "0"]:
                return copy_path
        raise AssertionError(f"no quiet moment on {self.device} to copy it in {timeout}s")

    def detach(self):
        """Unmounts (lazily as a last resort) and frees the loop device; never raises."""
        if self.mounted:
            for args in (["umount", self.mount_point], ["umount", "-l", self.mount_point]):
                if subprocess.run(args, capture_output=True, timeout=60).returncode == 0:
                    break
                time.sleep(0.5)
            self.mounted = False
        if self.device:
            subprocess.run(["losetup", "-d", self.device], capture_output=True, timeout=60)
            self.device = None


@contextlib.contextmanager
def loop_image(image_path, mount_point, size_mib, mount_options=""):
    image = None
    try:
        image = LoopImage.create(image_path, mount_point, size_mib, mount_options)
        yield image
    finally:
        if image:
            image.detach()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(image_path)
