# Flash store under kill -9 (run by tests/device/test_runtime.py on the unix port).
#
#   micropython store_crash.py write DIR ORACLE [lfs IMAGE]   save records forever
#   micropython store_crash.py check DIR [lfs IMAGE]          print "LOADED <n>" (or "EMPTY")
#
# The writer saves record n (n, then padding of a varying size so records change length),
# appending "B n" to ORACLE before save() and "D n" after it returned. The test kills it
# with SIGKILL at random instants and checks that the store loads n = the last D, or the B
# that follows it: the last complete snapshot, never a torn one, never an older one.
#
# With "lfs IMAGE" the store lives on a littlefs2 volume in a file-backed block device:
# every block program/erase is one write() to IMAGE, so a kill leaves the image exactly as a
# power cut between two flash operations would. Without it the store is on the host
# filesystem (POSIX rename).
import os
import sys

from lasp_device.flashstore import FlashStore

BS = 512
NBLOCKS = 256


class FileBlockDevice:
    """Extended block device protocol (littlefs): offsets within blocks, explicit erase."""

    def __init__(self, path):
        try:
            os.stat(path)
        except OSError:
            with open(path, "wb") as f:
                f.write(b"\xff" * (BS * NBLOCKS))
        self.f = open(path, "r+b")  # noqa: SIM115 (open for the life of the volume)

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * BS + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        self.f.seek(n * BS + (off or 0))
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return NBLOCKS
        if op == 5:
            return BS
        if op == 6:  # erase: littlefs only needs it to succeed
            return 0
        return None


def mount_lfs(image):
    import vfs

    bdev = FileBlockDevice(image)
    try:
        fs = vfs.VfsLfs2(bdev)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        fs = vfs.VfsLfs2(bdev)
    vfs.mount(fs, "/flash")
    return "/flash/lasp"


def main():
    cmd = sys.argv[1]
    d = sys.argv[2]
    rest = sys.argv[3:]
    if cmd == "write":
        oracle = rest.pop(0)
    if rest and rest[0] == "lfs":
        d = mount_lfs(rest[1])
    st = FlashStore(d)
    p = st.load()
    n = 0 if p is None else int(p.split(b" ")[0])
    if cmd == "check":
        print("EMPTY" if p is None else "LOADED %d" % n)
        return
    while True:
        n += 1
        payload = b"%d " % n + b"x" * ((n * 37) % 700)
        with open(oracle, "a") as f:
            f.write("B %d\n" % n)
        st.save(payload)
        with open(oracle, "a") as f:
            f.write("D %d\n" % n)


main()
