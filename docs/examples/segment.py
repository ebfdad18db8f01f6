"""The QSharedMemory two-program example in Python: one process writes a text into a segment under
its lock, another attaches and reads it.

    python3 segment.py write "hello"   # keeps the segment until Enter (or end of input)
    python3 segment.py                 # in another shell: prints the text
"""

import sys

import shmring

KEY = "example-python-segment"


def write(text: str) -> int:
    shm = shmring.SharedMemory(KEY)
    if not shm.create(4096):
        print(shm.error_string())
        return 1
    shm.lock()
    data = shm.data()
    encoded = text.encode() + b"\0"
    data[:len(encoded)] = encoded
    data.release()  # memoryviews must be gone before detach()
    shm.unlock()
    print("written; press Enter to quit", flush=True)
    sys.stdin.readline()
    shm.detach()  # the last one out removes the segment
    return 0


def read() -> int:
    shm = shmring.SharedMemory(KEY)
    if not shm.attach(shmring.AccessMode.READ_ONLY):
        print(shm.error_string())  # e.g. NOT_FOUND
        return 1
    shm.lock()
    with shm.data() as data:
        text = bytes(data).split(b"\0", 1)[0].decode()
    shm.unlock()
    print(f"{text} ({shm.num_attachments()} attached)")
    shm.detach()
    return 0


if __name__ == "__main__":
    sys.exit(write(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "write" else read())
